-- Erasure and retention. A recording that was erased keeps its row (its identity is what
-- recognises a re-announcement of it, which must not archive it again) with erased_at set;
-- its jobs and attempts are deleted, and what was erased is kept in `erasures`.
ALTER TABLE recordings ADD COLUMN erased_at BIGINT;
-- The recording's start (recordingStartTime) in epoch milliseconds, for retention; NULL when
-- the announcement had none, and retention then goes by created_at.
ALTER TABLE recordings ADD COLUMN started_at BIGINT;
UPDATE recordings
   SET started_at = CAST(EXTRACT(EPOCH FROM start_time::timestamptz) * 1000 AS BIGINT)
 WHERE start_time ~ '^[0-9]{4}-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\.[0-9]+)?(Z|[+-][0-2][0-9]:[0-5][0-9])$';
-- Retention's selection, oldest first, over the recordings not erased yet.
CREATE INDEX recordings_retention ON recordings ((COALESCE(started_at, created_at)), id)
    WHERE erased_at IS NULL;

-- One row per erased (or being erased) recording. state: `started` once the intent is
-- recorded (the objects may still be in the store), `done` once the tombstone is written.
-- origin: `request` (an operator) or `retention`. tombstone: the JSON document written in
-- the recording's place, fixed when the erasure starts so that a re-run writes the same one.
CREATE TABLE erasures (
    recording_id BIGINT PRIMARY KEY REFERENCES recordings (id),
    state        TEXT NOT NULL CHECK (state IN ('started', 'done')),
    origin       TEXT NOT NULL CHECK (origin IN ('request', 'retention')),
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    tombstone    TEXT NOT NULL
);
CREATE INDEX erasures_open ON erasures (recording_id) WHERE state = 'started';
-- callvault_recordings_erased_total counts these at each scrape, from the index alone.
CREATE INDEX erasures_done ON erasures (origin) WHERE state = 'done';
