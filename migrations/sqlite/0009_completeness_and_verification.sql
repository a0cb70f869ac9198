-- Completeness evidence and scheduled verification.
--
-- Per chunk, what its metadata document says about time: `chunkStartTime` (as written, when it
-- parses), `chunkDuration` in ms (NULL when missing or out of range) and `pauseResumeIntervals`
-- as a JSON array of {startTime, durationMs} (NULL when the list could not be read).
ALTER TABLE jobs ADD COLUMN chunk_start_time TEXT;
ALTER TABLE jobs ADD COLUMN chunk_duration_ms BIGINT;
ALTER TABLE jobs ADD COLUMN pause_intervals TEXT;

-- Per recording, the duration check made when its manifest was written: `complete`, `short`
-- or `unknown`, the time the chunks (and pauses outside them) cover, the shortfall against
-- recordingDurationMs, and why the verdict is unknown.
ALTER TABLE recordings ADD COLUMN completeness TEXT;
ALTER TABLE recordings ADD COLUMN covered_ms BIGINT;
ALTER TABLE recordings ADD COLUMN shortfall_ms BIGINT;
ALTER TABLE recordings ADD COLUMN completeness_note TEXT;
ALTER TABLE recordings ADD COLUMN completeness_checked_at BIGINT;

-- The last full re-read by the scheduled verifier: when, `ok` / `failed` / `error`, and what
-- was found.
ALTER TABLE recordings ADD COLUMN last_verified_at BIGINT;
ALTER TABLE recordings ADD COLUMN last_verify_result TEXT;
ALTER TABLE recordings ADD COLUMN last_verify_detail TEXT;

-- The verifier's rotation: never verified first, then the longest ago.
CREATE INDEX recordings_verify_order ON recordings ((COALESCE(last_verified_at, 0)), id)
    WHERE manifest_key IS NOT NULL;
-- The rare states the stats count.
CREATE INDEX recordings_short ON recordings (id) WHERE completeness = 'short';
CREATE INDEX recordings_verify_failed ON recordings (id) WHERE last_verify_result = 'failed';
