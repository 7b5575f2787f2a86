-- Appends no longer keep a row per stream. A stream's version, first and last recorded times
-- are read from its first and last events through events_stream_version_key, which also makes
-- two appends of the same version collide (see "Appends" in the package documentation). The
-- streams table cost every append an upsert and a row lock; it holds nothing the events lack.
DROP TABLE streams;
