-- Quarantine keeps at most 64 KiB of an event; its full size and sha256 identify the rest.
-- Rows stored before keep their payload whole (payload_sha256 stays NULL) until purged.
ALTER TABLE quarantine ADD COLUMN payload_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE quarantine ADD COLUMN payload_sha256 TEXT;
ALTER TABLE quarantine ADD COLUMN payload_truncated BIGINT NOT NULL DEFAULT 0;
UPDATE quarantine SET payload_bytes = octet_length(payload);

-- The purge deletes entries by their last activity: replayed, or else received.
CREATE INDEX quarantine_last_activity ON quarantine ((COALESCE(replayed_at, received_at)));
