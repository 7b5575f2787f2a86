// Package strata is a verifiable event store: it records every decision as an immutable event and
// reads them back per stream or as one gap-free global log.
//
// This package holds the domain only — the event record, [Store], [ExpectedVersion], [Position],
// [Filter] and [*Error] — and does no I/O. Backends live in sub-packages (inmem, sqlite, postgres,
// mysql) and all pass the conformance suite in storetest.
//
// The invariant that matters most: a reader of the global log ([Store.ReadAll], [Store.Subscribe])
// never passes an event that commits later with a lower place in the log. A reader that has seen
// [Position] p will find every event committed after that moment strictly after p.
package strata
