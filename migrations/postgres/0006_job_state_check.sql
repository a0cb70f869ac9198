-- A job's state is one of five; the database refuses any other, so a row can never be
-- read as a state the service does not know. Fails on a stored row in an unknown state.
ALTER TABLE jobs ADD CONSTRAINT jobs_state_known
    CHECK (state IN ('pending', 'running', 'archived', 'failed', 'expired'));
