-- Counts kept by the statements that change them, so /metrics, /admin/stats, the recordings
-- list and the manifest sweep never read every job. Triggers keep them, so no writer can
-- forget to. `shard` (the session's backend pid modulo 16) spreads the hot rows over
-- connections, so concurrent workers do not queue on one row; readers sum over the shards.
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

CREATE FUNCTION count_job_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard BIGINT := pg_backend_pid() % 16;
    old_state TEXT;
    new_state TEXT;
    old_bytes BIGINT := 0;
    new_bytes BIGINT := 0;
    job_recording BIGINT;
    chunk_delta BIGINT := 0;
    archived_at_new BIGINT;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        old_state := OLD.state;
        old_bytes := job_archived_bytes(OLD.state, OLD.media_bytes, OLD.metadata_bytes);
        job_recording := OLD.recording_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        new_state := NEW.state;
        new_bytes := job_archived_bytes(NEW.state, NEW.media_bytes, NEW.metadata_bytes);
        job_recording := NEW.recording_id;
        IF NEW.state = 'archived' THEN
            archived_at_new := NEW.archived_at;
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN chunk_delta := 1; END IF;
    IF TG_OP = 'DELETE' THEN chunk_delta := -1; END IF;
    IF TG_OP = 'UPDATE' AND old_state = new_state AND old_bytes = new_bytes
       AND archived_at_new IS NOT DISTINCT FROM OLD.archived_at THEN
        RETURN NULL;
    END IF;

    -- One statement for both rows, so every session locks them in the same order.
    UPDATE job_counts SET
        jobs = jobs + (CASE WHEN state = new_state THEN 1 ELSE 0 END)
                    - (CASE WHEN state = old_state THEN 1 ELSE 0 END),
        archived_bytes = archived_bytes + (CASE WHEN state = new_state THEN new_bytes ELSE 0 END)
                                        - (CASE WHEN state = old_state THEN old_bytes ELSE 0 END)
    WHERE shard = my_shard AND (state = old_state OR state = new_state);

    UPDATE recording_counts SET
        chunks = chunks + chunk_delta,
        archived_chunks = archived_chunks
            + (CASE WHEN new_state = 'archived' THEN 1 ELSE 0 END)
            - (CASE WHEN old_state = 'archived' THEN 1 ELSE 0 END),
        active_chunks = active_chunks
            + (CASE WHEN new_state IN ('pending', 'running') THEN 1 ELSE 0 END)
            - (CASE WHEN old_state IN ('pending', 'running') THEN 1 ELSE 0 END),
        broken_chunks = broken_chunks
            + (CASE WHEN new_state IN ('failed', 'expired') THEN 1 ELSE 0 END)
            - (CASE WHEN old_state IN ('failed', 'expired') THEN 1 ELSE 0 END),
        archived_bytes = archived_bytes + new_bytes - old_bytes,
        last_archived_at = GREATEST(last_archived_at, archived_at_new)
    WHERE recording_id = job_recording;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_counted AFTER INSERT OR DELETE OR UPDATE OF state, media_bytes, metadata_bytes, archived_at
    ON jobs FOR EACH ROW EXECUTE FUNCTION count_job_change();

CREATE FUNCTION count_recording_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO recording_counts (recording_id, has_manifest, manifest_written_at)
        VALUES (NEW.id, CASE WHEN NEW.manifest_key IS NULL THEN 0 ELSE 1 END, NEW.manifest_written_at);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE recording_counts SET
            has_manifest = CASE WHEN NEW.manifest_key IS NULL THEN 0 ELSE 1 END,
            manifest_written_at = NEW.manifest_written_at
        WHERE recording_id = NEW.id;
    ELSE
        DELETE FROM recording_counts WHERE recording_id = OLD.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER recordings_counted AFTER INSERT OR DELETE OR UPDATE OF manifest_key, manifest_written_at
    ON recordings FOR EACH ROW EXECUTE FUNCTION count_recording_change();

CREATE FUNCTION count_recording_state_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard BIGINT := pg_backend_pid() % 16;
    old_state TEXT;
    new_state TEXT;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        old_state := recording_state_of(OLD.broken_chunks, OLD.active_chunks, OLD.has_manifest);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        new_state := recording_state_of(NEW.broken_chunks, NEW.active_chunks, NEW.has_manifest);
    END IF;
    IF old_state IS NOT DISTINCT FROM new_state THEN
        RETURN NULL;
    END IF;
    UPDATE recording_state_counts SET
        recordings = recordings + (CASE WHEN state = new_state THEN 1 ELSE 0 END)
                                - (CASE WHEN state = old_state THEN 1 ELSE 0 END)
    WHERE shard = my_shard AND (state = old_state OR state = new_state);
    RETURN NULL;
END
$$;

CREATE TRIGGER recording_counts_counted AFTER INSERT OR DELETE OR UPDATE
    ON recording_counts FOR EACH ROW EXECUTE FUNCTION count_recording_state_change();

-- The age of the oldest pending job, read from one end of an index (MIN over a prefix).
CREATE INDEX jobs_state_age ON jobs (state, created_at);
