-- A recording is found by its identity: `id:{recordingId}`, or its full-precision start time
-- with its content, channel and format type. recording_key stays what it always was, the
-- recording's folder name, unique per call (UNIQUE (call_id, recording_key) in 0001), now
-- with `-2`, `-3`… when a second recording of the call would get a name already taken.
-- Existing rows keep their folder; their identity is filled in, from their own columns, by
-- the next announcement of the same recording.
ALTER TABLE recordings ADD COLUMN identity TEXT;
CREATE UNIQUE INDEX recordings_identity ON recordings (call_id, identity);
