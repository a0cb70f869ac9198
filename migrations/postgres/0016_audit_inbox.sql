-- Audit records written by hot paths (a chunk archived, a verification that failed), not yet
-- in the chain. Inserting here takes no lock on the chain's head, so archive commits no
-- longer wait for each other; a chainer moves rows into audit_log in id order, under the
-- head's lock, deleting each in the transaction that chains it, so a row is chained once.
-- detail is canonical JSON, already bounded as a record's detail is.
CREATE TABLE audit_inbox (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    recording_id  BIGINT,
    recording_key TEXT,
    detail        TEXT NOT NULL
);
