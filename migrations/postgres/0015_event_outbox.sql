-- Events for the next stage of a pipeline (transcription, indexing): one row per event and
-- sink, written in the transaction that records the change the event announces, so an event
-- exists exactly when its change is committed. The dispatcher in `serve` delivers each row at
-- least once, in order per recording and sink, under a lease like a job's.
CREATE TABLE event_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The CloudEvent id: one per manifest version or failure, the same for every sink.
    event_id        TEXT NOT NULL,
    sink            TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    recording_id    BIGINT NOT NULL,
    -- The CloudEvent, structured JSON, exactly as delivered.
    body            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivering', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
-- A manifest version rewritten (the sweep after an interrupted write) announces nothing twice.
CREATE UNIQUE INDEX event_outbox_once ON event_outbox (event_id, sink);
-- The dispatcher's claim: a sink's due rows in order.
CREATE INDEX event_outbox_due ON event_outbox (sink, state, next_attempt_at, id);
-- Whether an earlier event of the same recording is still on its way.
CREATE INDEX event_outbox_recording ON event_outbox (sink, recording_id, id);
-- Depth and oldest row per sink and state (metrics), and admin pages of one state.
CREATE INDEX event_outbox_state ON event_outbox (sink, state, id);
CREATE INDEX event_outbox_state_any_sink ON event_outbox (state, id);
