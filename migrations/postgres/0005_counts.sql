-- Counts kept by the statements that change them, so /metrics, /admin/stats, the recordings
-- list and the manifest sweep never read every job. Triggers keep them, so no writer can
-- forget to. `shard` (the session's backend pid modulo 16) spreads the hot rows over
-- connections, so concurrent workers do not queue on one row; readers sum over the shards.
-- Counts are kept per statement (see below).
CREATE TABLE job_counts (
    state          TEXT NOT NULL,
    shard          BIGINT NOT NULL,
    jobs           BIGINT NOT NULL DEFAULT 0,
    archived_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (state, shard)
);
INSERT INTO job_counts (state, shard)
SELECT s, n FROM unnest(ARRAY['pending', 'running', 'archived', 'failed', 'expired']) s,
                 generate_series(0, 15) n;
UPDATE job_counts c SET jobs = x.jobs, archived_bytes = x.bytes
FROM (SELECT state, COUNT(*) AS jobs,
             COALESCE(SUM(CASE WHEN state = 'archived'
                 THEN COALESCE(media_bytes, 0) + COALESCE(metadata_bytes, 0) ELSE 0 END), 0) AS bytes
      FROM jobs GROUP BY state) x
WHERE c.state = x.state AND c.shard = 0;

-- Per recording: the job counts its derived state comes from, its archived bytes, and what
-- the manifest sweep compares (newest archived chunk against the manifest's time).
CREATE TABLE recording_counts (
    recording_id        BIGINT PRIMARY KEY REFERENCES recordings (id),
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
SELECT r.id, COALESCE(x.chunks, 0), COALESCE(x.archived, 0), COALESCE(x.active, 0),
       COALESCE(x.broken, 0), COALESCE(x.bytes, 0), x.last_archived_at,
       CASE WHEN r.manifest_key IS NULL THEN 0 ELSE 1 END, r.manifest_written_at
FROM recordings r LEFT JOIN (
    SELECT recording_id, COUNT(*) AS chunks,
           COUNT(*) FILTER (WHERE state = 'archived') AS archived,
           COUNT(*) FILTER (WHERE state IN ('pending', 'running')) AS active,
           COUNT(*) FILTER (WHERE state IN ('failed', 'expired')) AS broken,
           SUM(CASE WHEN state = 'archived'
               THEN COALESCE(media_bytes, 0) + COALESCE(metadata_bytes, 0) ELSE 0 END) AS bytes,
           MAX(archived_at) FILTER (WHERE state = 'archived') AS last_archived_at
    FROM jobs GROUP BY recording_id) x ON x.recording_id = r.id;
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
SELECT s, n FROM unnest(ARRAY['failed', 'archiving', 'complete', 'incomplete']) s,
                 generate_series(0, 15) n;

CREATE FUNCTION recording_state_of(broken BIGINT, active BIGINT, has_manifest BIGINT)
RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN broken > 0 THEN 'failed' WHEN active > 0 THEN 'archiving'
                WHEN has_manifest = 1 THEN 'complete' ELSE 'incomplete' END
$$;

UPDATE recording_state_counts s SET recordings = x.n
FROM (SELECT recording_state_of(broken_chunks, active_chunks, has_manifest) AS state, COUNT(*) AS n
      FROM recording_counts GROUP BY 1) x
WHERE s.state = x.state AND s.shard = 0;

CREATE FUNCTION job_archived_bytes(state TEXT, media BIGINT, metadata BIGINT)
RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN state = 'archived' THEN COALESCE(media, 0) + COALESCE(metadata, 0) ELSE 0 END
$$;

-- The triggers run once per statement over its transition tables, so a statement changing
-- many jobs (a batched claim, a bulk insert) updates each count row once rather than once
-- per job (repeated updates of one row in one transaction grow its version chain). Each
-- changed row counts -1 as it was and +1 as it is; rows whose counts did not move (a lease
-- renewal) leave the counts untouched and unlocked.
CREATE FUNCTION count_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH changes AS (SELECT state, recording_id, 1 AS n, job_archived_bytes(state, media_bytes, metadata_bytes) AS bytes, archived_at FROM new_jobs),
    by_state AS (
        SELECT state, SUM(n) AS jobs, SUM(n * bytes) AS bytes FROM changes GROUP BY state
        HAVING SUM(n) <> 0 OR SUM(n * bytes) <> 0
    )
    UPDATE job_counts c SET jobs = c.jobs + d.jobs, archived_bytes = c.archived_bytes + d.bytes
    FROM by_state d WHERE c.state = d.state AND c.shard = pg_backend_pid() % 16;

    WITH changes AS (SELECT state, recording_id, 1 AS n, job_archived_bytes(state, media_bytes, metadata_bytes) AS bytes, archived_at FROM new_jobs),
    by_recording AS (
        SELECT recording_id,
               SUM(n) AS chunks,
               COALESCE(SUM(n) FILTER (WHERE state = 'archived'), 0) AS archived,
               COALESCE(SUM(n) FILTER (WHERE state IN ('pending', 'running')), 0) AS active,
               COALESCE(SUM(n) FILTER (WHERE state IN ('failed', 'expired')), 0) AS broken,
               SUM(n * bytes) AS bytes,
               MAX(archived_at) FILTER (WHERE n > 0 AND state = 'archived') AS archived_at,
               MAX(archived_at) FILTER (WHERE n < 0 AND state = 'archived') AS archived_before
        FROM changes GROUP BY recording_id
    )
    UPDATE recording_counts c SET
        chunks = c.chunks + d.chunks,
        archived_chunks = c.archived_chunks + d.archived,
        active_chunks = c.active_chunks + d.active,
        broken_chunks = c.broken_chunks + d.broken,
        archived_bytes = c.archived_bytes + d.bytes,
        last_archived_at = GREATEST(c.last_archived_at, d.archived_at)
    FROM by_recording d
    WHERE c.recording_id = d.recording_id
      AND (d.chunks <> 0 OR d.archived <> 0 OR d.active <> 0 OR d.broken <> 0 OR d.bytes <> 0
           OR d.archived_at IS DISTINCT FROM d.archived_before);
    RETURN NULL;
END
$$;
CREATE FUNCTION count_jobs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Most updates move no count (a lease renewal, a retry's bookkeeping): leave at once.
    IF NOT EXISTS (
        SELECT 1 FROM new_jobs n JOIN old_jobs o ON o.id = n.id
        WHERE n.state IS DISTINCT FROM o.state
           OR n.media_bytes IS DISTINCT FROM o.media_bytes
           OR n.metadata_bytes IS DISTINCT FROM o.metadata_bytes
           OR n.archived_at IS DISTINCT FROM o.archived_at
    ) THEN
        RETURN NULL;
    END IF;
    WITH changes AS (SELECT state, recording_id, 1 AS n, job_archived_bytes(state, media_bytes, metadata_bytes) AS bytes, archived_at FROM new_jobs UNION ALL SELECT state, recording_id, -1 AS n, job_archived_bytes(state, media_bytes, metadata_bytes) AS bytes, archived_at FROM old_jobs),
    by_state AS (
        SELECT state, SUM(n) AS jobs, SUM(n * bytes) AS bytes FROM changes GROUP BY state
        HAVING SUM(n) <> 0 OR SUM(n * bytes) <> 0
    )
    UPDATE job_counts c SET jobs = c.jobs + d.jobs, archived_bytes = c.archived_bytes + d.bytes
    FROM by_state d WHERE c.state = d.state AND c.shard = pg_backend_pid() % 16;

    -- A claim or a retry (pending and running are both active) moves no recording's counts.
    IF NOT EXISTS (
        SELECT 1 FROM new_jobs n JOIN old_jobs o ON o.id = n.id
        WHERE (n.state IN ('pending', 'running')) IS DISTINCT FROM (o.state IN ('pending', 'running'))
           OR n.state IS DISTINCT FROM o.state AND 'archived' IN (n.state, o.state)
           OR n.media_bytes IS DISTINCT FROM o.media_bytes
           OR n.metadata_bytes IS DISTINCT FROM o.metadata_bytes
           OR n.archived_at IS DISTINCT FROM o.archived_at
           OR (n.state IN ('failed', 'expired')) IS DISTINCT FROM (o.state IN ('failed', 'expired'))
    ) THEN
        RETURN NULL;
    END IF;

    WITH changes AS (SELECT state, recording_id, 1 AS n, job_archived_bytes(state, media_bytes, metadata_bytes) AS bytes, archived_at FROM new_jobs UNION ALL SELECT state, recording_id, -1 AS n, job_archived_bytes(state, media_bytes, metadata_bytes) AS bytes, archived_at FROM old_jobs),
    by_recording AS (
        SELECT recording_id,
               SUM(n) AS chunks,
               COALESCE(SUM(n) FILTER (WHERE state = 'archived'), 0) AS archived,
               COALESCE(SUM(n) FILTER (WHERE state IN ('pending', 'running')), 0) AS active,
               COALESCE(SUM(n) FILTER (WHERE state IN ('failed', 'expired')), 0) AS broken,
               SUM(n * bytes) AS bytes,
               MAX(archived_at) FILTER (WHERE n > 0 AND state = 'archived') AS archived_at,
               MAX(archived_at) FILTER (WHERE n < 0 AND state = 'archived') AS archived_before
        FROM changes GROUP BY recording_id
    )
    UPDATE recording_counts c SET
        chunks = c.chunks + d.chunks,
        archived_chunks = c.archived_chunks + d.archived,
        active_chunks = c.active_chunks + d.active,
        broken_chunks = c.broken_chunks + d.broken,
        archived_bytes = c.archived_bytes + d.bytes,
        last_archived_at = GREATEST(c.last_archived_at, d.archived_at)
    FROM by_recording d
    WHERE c.recording_id = d.recording_id
      AND (d.chunks <> 0 OR d.archived <> 0 OR d.active <> 0 OR d.broken <> 0 OR d.bytes <> 0
           OR d.archived_at IS DISTINCT FROM d.archived_before);
    RETURN NULL;
END
$$;
CREATE FUNCTION count_jobs_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH changes AS (SELECT state, recording_id, -1 AS n, job_archived_bytes(state, media_bytes, metadata_bytes) AS bytes, archived_at FROM old_jobs),
    by_state AS (
        SELECT state, SUM(n) AS jobs, SUM(n * bytes) AS bytes FROM changes GROUP BY state
        HAVING SUM(n) <> 0 OR SUM(n * bytes) <> 0
    )
    UPDATE job_counts c SET jobs = c.jobs + d.jobs, archived_bytes = c.archived_bytes + d.bytes
    FROM by_state d WHERE c.state = d.state AND c.shard = pg_backend_pid() % 16;

    WITH changes AS (SELECT state, recording_id, -1 AS n, job_archived_bytes(state, media_bytes, metadata_bytes) AS bytes, archived_at FROM old_jobs),
    by_recording AS (
        SELECT recording_id,
               SUM(n) AS chunks,
               COALESCE(SUM(n) FILTER (WHERE state = 'archived'), 0) AS archived,
               COALESCE(SUM(n) FILTER (WHERE state IN ('pending', 'running')), 0) AS active,
               COALESCE(SUM(n) FILTER (WHERE state IN ('failed', 'expired')), 0) AS broken,
               SUM(n * bytes) AS bytes,
               MAX(archived_at) FILTER (WHERE n > 0 AND state = 'archived') AS archived_at,
               MAX(archived_at) FILTER (WHERE n < 0 AND state = 'archived') AS archived_before
        FROM changes GROUP BY recording_id
    )
    UPDATE recording_counts c SET
        chunks = c.chunks + d.chunks,
        archived_chunks = c.archived_chunks + d.archived,
        active_chunks = c.active_chunks + d.active,
        broken_chunks = c.broken_chunks + d.broken,
        archived_bytes = c.archived_bytes + d.bytes,
        last_archived_at = GREATEST(c.last_archived_at, d.archived_at)
    FROM by_recording d
    WHERE c.recording_id = d.recording_id
      AND (d.chunks <> 0 OR d.archived <> 0 OR d.active <> 0 OR d.broken <> 0 OR d.bytes <> 0
           OR d.archived_at IS DISTINCT FROM d.archived_before);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_counted_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION count_jobs_inserted();
CREATE TRIGGER jobs_counted_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION count_jobs_updated();
CREATE TRIGGER jobs_counted_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION count_jobs_deleted();

CREATE FUNCTION count_recordings_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO recording_counts (recording_id, has_manifest, manifest_written_at)
    SELECT id, CASE WHEN manifest_key IS NULL THEN 0 ELSE 1 END, manifest_written_at FROM new_recordings;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_recordings_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE recording_counts c SET
        has_manifest = CASE WHEN n.manifest_key IS NULL THEN 0 ELSE 1 END,
        manifest_written_at = n.manifest_written_at
    FROM new_recordings n JOIN old_recordings o ON o.id = n.id
    WHERE c.recording_id = n.id
      AND (n.manifest_key IS DISTINCT FROM o.manifest_key
           OR n.manifest_written_at IS DISTINCT FROM o.manifest_written_at);
    RETURN NULL;
END
$$;

CREATE FUNCTION count_recordings_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM recording_counts c USING old_recordings o WHERE c.recording_id = o.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER recordings_counted_insert AFTER INSERT ON recordings
    REFERENCING NEW TABLE AS new_recordings FOR EACH STATEMENT EXECUTE FUNCTION count_recordings_inserted();
CREATE TRIGGER recordings_counted_update AFTER UPDATE ON recordings
    REFERENCING OLD TABLE AS old_recordings NEW TABLE AS new_recordings
    FOR EACH STATEMENT EXECUTE FUNCTION count_recordings_updated();
CREATE TRIGGER recordings_counted_delete AFTER DELETE ON recordings
    REFERENCING OLD TABLE AS old_recordings FOR EACH STATEMENT EXECUTE FUNCTION count_recordings_deleted();

CREATE FUNCTION count_recording_states_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH changes AS (SELECT recording_state_of(broken_chunks, active_chunks, has_manifest) AS state, 1 AS n FROM new_counts),
    by_state AS (
        SELECT state, SUM(n) AS recordings FROM changes GROUP BY state HAVING SUM(n) <> 0
    )
    UPDATE recording_state_counts c SET recordings = c.recordings + d.recordings
    FROM by_state d WHERE c.state = d.state AND c.shard = pg_backend_pid() % 16;
    RETURN NULL;
END
$$;
CREATE FUNCTION count_recording_states_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The jobs trigger often updates no recording (a claim keeps its chunks active).
    IF NOT EXISTS (SELECT 1 FROM new_counts) THEN
        RETURN NULL;
    END IF;
    WITH changes AS (SELECT recording_state_of(broken_chunks, active_chunks, has_manifest) AS state, 1 AS n FROM new_counts UNION ALL SELECT recording_state_of(broken_chunks, active_chunks, has_manifest) AS state, -1 AS n FROM old_counts),
    by_state AS (
        SELECT state, SUM(n) AS recordings FROM changes GROUP BY state HAVING SUM(n) <> 0
    )
    UPDATE recording_state_counts c SET recordings = c.recordings + d.recordings
    FROM by_state d WHERE c.state = d.state AND c.shard = pg_backend_pid() % 16;
    RETURN NULL;
END
$$;
CREATE FUNCTION count_recording_states_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH changes AS (SELECT recording_state_of(broken_chunks, active_chunks, has_manifest) AS state, -1 AS n FROM old_counts),
    by_state AS (
        SELECT state, SUM(n) AS recordings FROM changes GROUP BY state HAVING SUM(n) <> 0
    )
    UPDATE recording_state_counts c SET recordings = c.recordings + d.recordings
    FROM by_state d WHERE c.state = d.state AND c.shard = pg_backend_pid() % 16;
    RETURN NULL;
END
$$;

CREATE TRIGGER recording_counts_counted_insert AFTER INSERT ON recording_counts
    REFERENCING NEW TABLE AS new_counts FOR EACH STATEMENT EXECUTE FUNCTION count_recording_states_inserted();
CREATE TRIGGER recording_counts_counted_update AFTER UPDATE ON recording_counts
    REFERENCING OLD TABLE AS old_counts NEW TABLE AS new_counts
    FOR EACH STATEMENT EXECUTE FUNCTION count_recording_states_updated();
CREATE TRIGGER recording_counts_counted_delete AFTER DELETE ON recording_counts
    REFERENCING OLD TABLE AS old_counts FOR EACH STATEMENT EXECUTE FUNCTION count_recording_states_deleted();

-- The age of the oldest pending job, read from one end of an index (MIN over a prefix).
CREATE INDEX jobs_state_age ON jobs (state, created_at);
