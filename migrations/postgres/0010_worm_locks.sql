-- WORM state per recording: the legal hold an operator set on its objects in the store, and
-- when the scheduled job of storage.lock_after_hours locked them (so it is done once). A
-- recording without a row has neither.
CREATE TABLE recording_locks (
    recording_id          BIGINT PRIMARY KEY REFERENCES recordings (id),
    legal_hold            BIGINT NOT NULL DEFAULT 0,
    legal_hold_changed_at BIGINT,
    locked_at             BIGINT,
    -- The newest object time (archived chunk or manifest) the lock covered: a later chunk or
    -- manifest rewrite makes the recording due again.
    locked_through        BIGINT
);
