-- Counts kept by the statements that change them, so /metrics, /admin/stats, the recordings
-- list and the manifest sweep never read every job. Triggers keep them, so no writer can
-- forget to. `shard` spreads the hot rows over connections on PostgreSQL; SQLite has one
-- writer at a time and uses shard 0 only. Readers sum over the shards.
CREATE TABLE job_counts (
    state          TEXT NOT NULL,
    shard          BIGINT NOT NULL,
    jobs           BIGINT NOT NULL DEFAULT 0,
    archived_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (state, shard)
);
INSERT INTO job_counts (state, shard)
    VALUES ('pending', 0), ('running', 0), ('archived', 0), ('failed', 0), ('expired', 0);
UPDATE job_counts SET
    jobs = (SELECT COUNT(*) FROM jobs j WHERE j.state = job_counts.state),
    archived_bytes = (SELECT COALESCE(SUM(COALESCE(j.media_bytes, 0) + COALESCE(j.metadata_bytes, 0)), 0)
                      FROM jobs j WHERE j.state = 'archived' AND job_counts.state = 'archived');

-- Per recording: the job counts its derived state comes from, its archived bytes, and what
-- the manifest sweep compares (newest archived chunk against the manifest's time).
CREATE TABLE recording_counts (
    recording_id        INTEGER PRIMARY KEY REFERENCES recordings (id),
    chunks              BIGINT NOT NULL DEFAULT 0,
    archived_chunks     BIGINT NOT NULL DEFAULT 0,
    active_chunks       BIGINT NOT NULL DEFAULT 0,
    broken_chunks       BIGINT NOT NULL DEFAULT 0,
    archived_bytes      BIGINT NOT NULL DEFAULT 0,
    last_archived_at    BIGINT,
    has_manifest        BIGINT NOT NULL DEFAULT 0,
    manifest_written_at BIGINT
);
INSERT INTO recording_counts (recording_id, chunks, archived_chunks, active_chunks, broken_chunks,
                              archived_bytes, last_archived_at, has_manifest, manifest_written_at)
SELECT r.id,
       (SELECT COUNT(*) FROM jobs j WHERE j.recording_id = r.id),
       (SELECT COUNT(*) FROM jobs j WHERE j.recording_id = r.id AND j.state = 'archived'),
       (SELECT COUNT(*) FROM jobs j WHERE j.recording_id = r.id AND j.state IN ('pending', 'running')),
       (SELECT COUNT(*) FROM jobs j WHERE j.recording_id = r.id AND j.state IN ('failed', 'expired')),
       (SELECT COALESCE(SUM(COALESCE(j.media_bytes, 0) + COALESCE(j.metadata_bytes, 0)), 0)
          FROM jobs j WHERE j.recording_id = r.id AND j.state = 'archived'),
       (SELECT MAX(j.archived_at) FROM jobs j WHERE j.recording_id = r.id AND j.state = 'archived'),
       r.manifest_key IS NOT NULL,
       r.manifest_written_at
FROM recordings r;
-- The sweep's candidates: everything archived, something newer than the manifest.
CREATE INDEX recording_counts_stale ON recording_counts (recording_id)
    WHERE active_chunks = 0 AND archived_chunks > 0
      AND (manifest_written_at IS NULL OR last_archived_at > manifest_written_at);

-- A recordings page filtered on a rare state walks only the recordings in it.
CREATE INDEX recording_counts_failed ON recording_counts (recording_id) WHERE broken_chunks > 0;
CREATE INDEX recording_counts_archiving ON recording_counts (recording_id)
    WHERE broken_chunks = 0 AND active_chunks > 0;

-- Recordings per derived state (the rule of RecordingState::derive).
CREATE TABLE recording_state_counts (
    state      TEXT NOT NULL,
    shard      BIGINT NOT NULL,
    recordings BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (state, shard)
);
INSERT INTO recording_state_counts (state, shard)
    VALUES ('failed', 0), ('archiving', 0), ('complete', 0), ('incomplete', 0);
UPDATE recording_state_counts SET recordings = (
    SELECT COUNT(*) FROM recording_counts c WHERE recording_state_counts.state =
        CASE WHEN c.broken_chunks > 0 THEN 'failed' WHEN c.active_chunks > 0 THEN 'archiving'
             WHEN c.has_manifest = 1 THEN 'complete' ELSE 'incomplete' END);

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

CREATE TRIGGER recordings_counted_insert AFTER INSERT ON recordings BEGIN
    INSERT INTO recording_counts (recording_id, has_manifest, manifest_written_at)
        VALUES (NEW.id, NEW.manifest_key IS NOT NULL, NEW.manifest_written_at);
END;

CREATE TRIGGER recordings_counted_manifest AFTER UPDATE OF manifest_key, manifest_written_at ON recordings BEGIN
    UPDATE recording_counts SET has_manifest = (NEW.manifest_key IS NOT NULL),
        manifest_written_at = NEW.manifest_written_at
    WHERE recording_id = NEW.id;
END;

CREATE TRIGGER recordings_counted_delete AFTER DELETE ON recordings BEGIN
    DELETE FROM recording_counts WHERE recording_id = OLD.id;
END;

CREATE TRIGGER recording_state_counted_insert AFTER INSERT ON recording_counts BEGIN
    UPDATE recording_state_counts SET recordings = recordings + 1 WHERE shard = 0 AND state =
        CASE WHEN NEW.broken_chunks > 0 THEN 'failed' WHEN NEW.active_chunks > 0 THEN 'archiving'
             WHEN NEW.has_manifest = 1 THEN 'complete' ELSE 'incomplete' END;
END;

CREATE TRIGGER recording_state_counted_update AFTER UPDATE ON recording_counts BEGIN
    UPDATE recording_state_counts SET recordings = recordings
        + (state = CASE WHEN NEW.broken_chunks > 0 THEN 'failed' WHEN NEW.active_chunks > 0 THEN 'archiving'
                        WHEN NEW.has_manifest = 1 THEN 'complete' ELSE 'incomplete' END)
        - (state = CASE WHEN OLD.broken_chunks > 0 THEN 'failed' WHEN OLD.active_chunks > 0 THEN 'archiving'
                        WHEN OLD.has_manifest = 1 THEN 'complete' ELSE 'incomplete' END)
    WHERE shard = 0;
END;

CREATE TRIGGER recording_state_counted_delete AFTER DELETE ON recording_counts BEGIN
    UPDATE recording_state_counts SET recordings = recordings - 1 WHERE shard = 0 AND state =
        CASE WHEN OLD.broken_chunks > 0 THEN 'failed' WHEN OLD.active_chunks > 0 THEN 'archiving'
             WHEN OLD.has_manifest = 1 THEN 'complete' ELSE 'incomplete' END;
END;

-- The age of the oldest pending job, read from one end of an index (MIN over a prefix).
CREATE INDEX jobs_state_age ON jobs (state, created_at);
