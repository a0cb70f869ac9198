-- Sinks disabled because their receiver answered 410 Gone. Kept here rather than in memory so
-- that a restart or another replica does not send to a receiver that asked to stop; an
-- operator enables a sink again (`callvault events enable-sink`), which deletes its row. Its
-- outbox rows stay pending meanwhile.
CREATE TABLE event_sinks_disabled (
    sink        TEXT PRIMARY KEY,
    disabled_at BIGINT NOT NULL,
    -- The HTTP status that disabled it.
    status      BIGINT NOT NULL,
    -- The receiver's answer, at most 2 KiB.
    reason      TEXT NOT NULL
);
