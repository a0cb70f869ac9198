-- no-transaction
-- A job's state is one of five; the database now refuses any other, as PostgreSQL does.
-- SQLite cannot add a CHECK to a table, so jobs is rebuilt (sqlite.org/lang_altertable.html,
-- "other kinds of table schema changes"): foreign keys are off while attempts briefly
-- points at no table, which needs the migration outside sqlx's transaction, so it opens
-- its own. A stored row in an unknown state makes the copy, and so the migration, fail,
-- with nothing changed.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE jobs_checked (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id    BIGINT NOT NULL REFERENCES recordings (id),
    chunk_index     BIGINT NOT NULL,
    document_id     TEXT NOT NULL,
    end_reason      TEXT,
    content_url     TEXT NOT NULL,
    metadata_url    TEXT NOT NULL,
    delete_url      TEXT,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'running', 'archived', 'failed', 'expired')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    deadline_at     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    archived_at     BIGINT,
    media_key       TEXT,
    media_bytes     BIGINT,
    media_sha256    TEXT,
    metadata_key    TEXT,
    metadata_bytes  BIGINT,
    metadata_sha256 TEXT,
    participants    TEXT,
    source_deleted_at BIGINT,
    UNIQUE (recording_id, document_id)
);
INSERT INTO jobs_checked SELECT * FROM jobs;
-- Ids keep counting from where jobs left off, even past deleted rows.
UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'jobs')
    WHERE name = 'jobs_checked' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs');
DROP TABLE jobs;
ALTER TABLE jobs_checked RENAME TO jobs;

-- What the dropped table had: its indexes (0001, 0004, 0005) and its count triggers (0005).
CREATE INDEX jobs_recording ON jobs (recording_id, chunk_index);
CREATE INDEX jobs_state ON jobs (state, deadline_at, recording_id, chunk_index);
CREATE INDEX jobs_open ON jobs (recording_id, chunk_index) WHERE state IN ('pending', 'running');
CREATE INDEX jobs_state_age ON jobs (state, created_at);

CREATE TRIGGER jobs_counted_insert AFTER INSERT ON jobs BEGIN
    UPDATE job_counts SET jobs = jobs + 1,
        archived_bytes = archived_bytes + CASE WHEN NEW.state = 'archived'
            THEN COALESCE(NEW.media_bytes, 0) + COALESCE(NEW.metadata_bytes, 0) ELSE 0 END
    WHERE state = NEW.state AND shard = 0;
    UPDATE recording_counts SET chunks = chunks + 1,
        archived_chunks = archived_chunks + (NEW.state = 'archived'),
        active_chunks = active_chunks + (NEW.state IN ('pending', 'running')),
        broken_chunks = broken_chunks + (NEW.state IN ('failed', 'expired')),
        archived_bytes = archived_bytes + CASE WHEN NEW.state = 'archived'
            THEN COALESCE(NEW.media_bytes, 0) + COALESCE(NEW.metadata_bytes, 0) ELSE 0 END,
        last_archived_at = CASE WHEN NEW.state = 'archived'
            THEN MAX(COALESCE(last_archived_at, 0), COALESCE(NEW.archived_at, 0)) ELSE last_archived_at END
    WHERE recording_id = NEW.recording_id;
END;

CREATE TRIGGER jobs_counted_update AFTER UPDATE OF state, media_bytes, metadata_bytes, archived_at ON jobs BEGIN
    UPDATE job_counts SET
        jobs = jobs + (state = NEW.state) - (state = OLD.state),
        archived_bytes = archived_bytes
            + CASE WHEN state = NEW.state AND NEW.state = 'archived'
                THEN COALESCE(NEW.media_bytes, 0) + COALESCE(NEW.metadata_bytes, 0) ELSE 0 END
            - CASE WHEN state = OLD.state AND OLD.state = 'archived'
                THEN COALESCE(OLD.media_bytes, 0) + COALESCE(OLD.metadata_bytes, 0) ELSE 0 END
    WHERE state IN (OLD.state, NEW.state) AND shard = 0;
    UPDATE recording_counts SET
        archived_chunks = archived_chunks + (NEW.state = 'archived') - (OLD.state = 'archived'),
        active_chunks = active_chunks + (NEW.state IN ('pending', 'running')) - (OLD.state IN ('pending', 'running')),
        broken_chunks = broken_chunks + (NEW.state IN ('failed', 'expired')) - (OLD.state IN ('failed', 'expired')),
        archived_bytes = archived_bytes
            + CASE WHEN NEW.state = 'archived' THEN COALESCE(NEW.media_bytes, 0) + COALESCE(NEW.metadata_bytes, 0) ELSE 0 END
            - CASE WHEN OLD.state = 'archived' THEN COALESCE(OLD.media_bytes, 0) + COALESCE(OLD.metadata_bytes, 0) ELSE 0 END,
        last_archived_at = CASE WHEN NEW.state = 'archived'
            THEN MAX(COALESCE(last_archived_at, 0), COALESCE(NEW.archived_at, 0)) ELSE last_archived_at END
    WHERE recording_id = NEW.recording_id;
END;

CREATE TRIGGER jobs_counted_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_counts SET jobs = jobs - 1,
        archived_bytes = archived_bytes - CASE WHEN OLD.state = 'archived'
            THEN COALESCE(OLD.media_bytes, 0) + COALESCE(OLD.metadata_bytes, 0) ELSE 0 END
    WHERE state = OLD.state AND shard = 0;
    UPDATE recording_counts SET chunks = chunks - 1,
        archived_chunks = archived_chunks - (OLD.state = 'archived'),
        active_chunks = active_chunks - (OLD.state IN ('pending', 'running')),
        broken_chunks = broken_chunks - (OLD.state IN ('failed', 'expired')),
        archived_bytes = archived_bytes - CASE WHEN OLD.state = 'archived'
            THEN COALESCE(OLD.media_bytes, 0) + COALESCE(OLD.metadata_bytes, 0) ELSE 0 END
    WHERE recording_id = OLD.recording_id;
END;

COMMIT;
PRAGMA foreign_keys = ON;
