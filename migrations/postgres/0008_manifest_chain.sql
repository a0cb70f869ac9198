-- The manifest hash chain: one row per signed manifest written, in the order written. Each
-- row names the sha256 of the manifest before it (NULL for the first). The unique index on
-- that name lets a link have one successor only, so the chain stays a single line even if
-- two writers ever got past the lock taken to append. recording_id is not a foreign key:
-- the chain outlives any row an operator removes.
CREATE TABLE manifest_chain (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256          TEXT NOT NULL UNIQUE,
    manifest_key    TEXT NOT NULL,
    recording_id    BIGINT NOT NULL,
    previous_sha256 TEXT,
    written_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX manifest_chain_one_successor ON manifest_chain (COALESCE(previous_sha256, ''));
CREATE INDEX manifest_chain_key ON manifest_chain (manifest_key, id);
