-- Call legs announced by Microsoft.Communication.CallLegStateChanged, and what recording on
-- policy did for each: the start intent is committed with the event that established the
-- leg, and the starter claims it under a lease like a job's, so one recording is started per
-- leg however often (and to however many replicas) the event is delivered.
CREATE TABLE call_legs (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_leg_id        TEXT NOT NULL UNIQUE,
    -- Base64Url of the conversation's URL: what the preview control API takes.
    conversation_id    TEXT NOT NULL,
    -- The newest state by eventTime; an older event arriving late changes nothing.
    state              TEXT NOT NULL,
    first_seen_at      BIGINT NOT NULL,
    -- eventTime of the state above, epoch milliseconds.
    state_changed_at   BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    -- none: nothing to start; pending/starting: a start is owed (starting under a lease);
    -- started: recording_id holds the recording; failed: given up, last_error says why.
    start_state        TEXT NOT NULL DEFAULT 'none'
                       CHECK (start_state IN ('none', 'pending', 'starting', 'started', 'failed')),
    start_requested_at BIGINT,
    -- When the first start request went out: its Repeatability-First-Sent on every retry.
    start_first_sent_at BIGINT,
    start_attempts     BIGINT NOT NULL DEFAULT 0,
    start_next_attempt_at BIGINT,
    start_lease_owner  TEXT,
    start_lease_until  BIGINT,
    recording_id       TEXT,
    started_at         BIGINT,
    last_error         TEXT
);
-- The admin list of one conversation, newest first.
CREATE INDEX call_legs_conversation ON call_legs (conversation_id, id);
-- The starter's claim: due starts in order.
CREATE INDEX call_legs_start_due ON call_legs (start_state, start_next_attempt_at, id);
