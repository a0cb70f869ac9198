-- Recordings: one row per (callId, recordingKey). Times are Unix epoch milliseconds.
CREATE TABLE recordings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id         TEXT NOT NULL,
    recording_key   TEXT NOT NULL,
    recording_id    TEXT,
    server_call_id  TEXT,
    start_time      TEXT,
    duration_ms     BIGINT,
    session_end_reason TEXT,
    content_type    TEXT,
    channel_type    TEXT,
    format_type     TEXT,
    media_extension TEXT NOT NULL,
    deadline_at     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    manifest_key    TEXT,
    manifest_written_at BIGINT,
    UNIQUE (call_id, recording_key)
);

-- One job per chunk: pending -> running -> archived | failed | expired.
CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id    BIGINT NOT NULL REFERENCES recordings (id),
    chunk_index     BIGINT NOT NULL,
    document_id     TEXT NOT NULL,
    end_reason      TEXT,
    content_url     TEXT NOT NULL,
    metadata_url    TEXT NOT NULL,
    delete_url      TEXT,
    state           TEXT NOT NULL DEFAULT 'pending',
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
CREATE INDEX jobs_claim ON jobs (state, deadline_at, next_attempt_at);
CREATE INDEX jobs_recording ON jobs (recording_id, chunk_index);

-- Every attempt at a job, for operators.
CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      BIGINT NOT NULL REFERENCES jobs (id),
    attempt     BIGINT NOT NULL,
    worker      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    outcome     TEXT,
    error       TEXT
);
CREATE INDEX attempts_job ON attempts (job_id);

-- Every event id ever received, so a redelivery is recognised.
CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    outcome      TEXT NOT NULL,
    recording_id BIGINT
);
CREATE INDEX events_recording ON events (recording_id);

-- Events that were JSON but invalid for us, kept with the reason.
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT,
    event_type  TEXT,
    reason      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    replayed_at BIGINT,
    replay_outcome TEXT
);

-- RecordingStateChanged events posted to recordingStateCallbackUri.
CREATE TABLE recording_state_events (
    event_id        TEXT PRIMARY KEY,
    recording_id    TEXT NOT NULL,
    state           TEXT NOT NULL,
    start_date_time TEXT,
    server_call_id  TEXT,
    event_time      TEXT,
    received_at     BIGINT NOT NULL,
    payload         TEXT NOT NULL
);
CREATE INDEX recording_state_events_recording ON recording_state_events (recording_id);
