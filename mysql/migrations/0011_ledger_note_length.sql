-- strata schema, version 11: a stored checkpoint note may be strata.MaxLedgerNoteLen (64 KiB)
-- long, one byte more than a BLOB holds (65,535): such a note failed to save with "Data too
-- long". MEDIUMBLOB holds 16 MiB. MODIFY to the type the column has is idempotent.
ALTER TABLE ledger_checkpoints MODIFY note MEDIUMBLOB NOT NULL;
