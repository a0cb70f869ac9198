-- The audit trail: who did what, to which recording, when. Each record names the hash of the
-- one before it, and its own hash covers its contents and that link, so a changed or removed
-- record breaks the chain. Rows are only ever inserted. recording_id has no foreign key: a
-- record outlives the recording it speaks of (an erasure is itself recorded).
CREATE TABLE audit_log (
    seq           BIGINT PRIMARY KEY,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    recording_id  BIGINT,
    recording_key TEXT,
    detail        TEXT NOT NULL,
    prev_hash     TEXT NOT NULL UNIQUE,
    hash          TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_recording ON audit_log (recording_id, seq);
CREATE INDEX audit_log_recording_key ON audit_log (recording_key, seq);
CREATE INDEX audit_log_at ON audit_log (at, seq);

-- The chain's head, one row. Every append updates it first, so appends are serialised by its
-- row lock (PostgreSQL) or the write lock (SQLite), and the chain cannot fork.
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at   BIGINT NOT NULL
);
INSERT INTO audit_head (id, seq, hash, at)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

-- How far the copy in the store has come: every record up to flushed_seq is in an object; a
-- flush that chose its range but did not finish left pending_last, and the next one writes
-- exactly that range again (the same object, so a retry never overlaps).
CREATE TABLE audit_flush (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    flushed_seq  BIGINT NOT NULL,
    pending_last BIGINT
);
INSERT INTO audit_flush (id, flushed_seq, pending_last) VALUES (1, 0, NULL);
