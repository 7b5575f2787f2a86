-- Transmitter leases (strata.TransmitStore, issue 9): one process at a time delivers for a
-- transmitter name. owner is '' once released; epoch grows on every claim and fences commits
-- (a commit locks the row FOR UPDATE and compares it); lease_until is Unix microseconds (0 once
-- released), the store's clock, as in the projection tables.

CREATE TABLE transmit_leases (
    name        text COLLATE "C" PRIMARY KEY,
    owner       text COLLATE "C" NOT NULL,
    epoch       bigint NOT NULL,
    lease_until bigint NOT NULL
);
