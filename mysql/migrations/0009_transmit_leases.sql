-- Transmitter leases (strata.TransmitStore, issue 9): one process at a time delivers for a
-- transmitter name. owner is '' once released; epoch grows on every claim and fences commits
-- (a commit locks the row FOR UPDATE and compares it); lease_until is Unix microseconds (0 once
-- released), the store's clock, as in the projection tables.

CREATE TABLE IF NOT EXISTS transmit_leases (
    name        VARBINARY(200) NOT NULL,
    owner       VARBINARY(200) NOT NULL,
    epoch       BIGINT         NOT NULL,
    lease_until BIGINT         NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;
