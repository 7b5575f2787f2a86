// Package httpapi serves a strata.Store over HTTP: a JSON API for appends, stream and global
// reads, stream listing, proofs, checkpoints, erasure and projection status, live subscriptions
// over Server-Sent Events, health and Prometheus metrics, and an embedded web explorer.
//
// Every request carries an API key (Authorization: Bearer strata_ID_SECRET) whose role says
// what it may do and whose tenant is the only one it sees: reads are filtered by the key's
// tenant, appends are stamped with it, and a foreign tenant's stream reads as not found. Errors
// are one JSON shape, {"error":{"code":...,"message":...}}, with the HTTP status taken from one
// table of error codes ([StatusOf]). The wire format is described in docs/openapi.json and
// docs/HTTP.md.
package httpapi
