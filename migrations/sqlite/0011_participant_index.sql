-- The participant index: every normalised participant id (src/participant_id.rs) a chunk's
-- metadata names, with the recording it belongs to, written in the transaction that records
-- the chunk archived. One row per participant and recording, whatever the number of chunks.
-- Without a rowid the rows are stored in key order, so one participant's recordings are one
-- range read.
CREATE TABLE participant_recordings (
    participant       TEXT NOT NULL,
    recording_id      BIGINT NOT NULL REFERENCES recordings (id),
    -- When the first archived chunk naming the participant was archived, and its index.
    first_seen_at     BIGINT NOT NULL,
    first_chunk_index BIGINT NOT NULL,
    PRIMARY KEY (participant, recording_id)
) WITHOUT ROWID;

-- Erasing a recording removes its rows: found by recording, not by participant.
CREATE INDEX participant_recordings_recording ON participant_recordings (recording_id);

-- The one-time backfill of chunks archived before this table existed: it walks archived jobs
-- by id up to `through_job_id` (the newest job when this migration ran), in batches, and
-- keeps its place in `next_job_id`, so an interrupted pass resumes where it stopped.
CREATE TABLE participant_backfill (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    next_job_id    BIGINT NOT NULL,
    through_job_id BIGINT NOT NULL,
    jobs_read      BIGINT NOT NULL DEFAULT 0,
    rows_added     BIGINT NOT NULL DEFAULT 0,
    ids_skipped    BIGINT NOT NULL DEFAULT 0,
    started_at     BIGINT,
    finished_at    BIGINT
);
INSERT INTO participant_backfill (id, next_job_id, through_job_id)
    SELECT 1, 0, COALESCE(MAX(id), 0) FROM jobs;
