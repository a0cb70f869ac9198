-- A claim reads due work straight from an index in claim order, so it costs the same with a
-- backlog of 100 or 100,000 and never sorts:
--   jobs_state: each state's jobs in claim order (earliest deadline, then recording, then
--               chunk). Pending work is its 'pending' range; lapsed leases are found in its
--               'running' range, which holds one entry per busy worker slot. Archived jobs
--               sit in a range of their own that no claim reads. It replaces jobs_claim,
--               whose order (deadline, next attempt) made every claim sort its due jobs.
--   jobs_open:  the pending and running chunks of each recording, so "an earlier chunk of
--               this recording is still pending or running" is one probe.
DROP INDEX IF EXISTS jobs_claim;
CREATE INDEX jobs_state ON jobs (state, deadline_at, recording_id, chunk_index);
CREATE INDEX jobs_open ON jobs (recording_id, chunk_index) WHERE state IN ('pending', 'running');
