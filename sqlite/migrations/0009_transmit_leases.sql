-- Transmitter leases (strata.TransmitStore, issue 9): one process at a time delivers for a
-- transmitter name. owner is '' once released; epoch grows on every claim and fences commits;
-- lease_until is Unix microseconds (0 once released), the store's clock, as in the projection
-- tables.

CREATE TABLE transmit_leases (
    name        TEXT    NOT NULL PRIMARY KEY,
    owner       TEXT    NOT NULL,
    epoch       INTEGER NOT NULL,
    lease_until INTEGER NOT NULL
) WITHOUT ROWID;
