-- Multipart uploads opened by a job's attempt and not yet completed or aborted. A row is
-- written before the first part is sent and deleted once the upload is closed, so a row left
-- behind names an upload that an outage kept its writer from aborting: the job's next attempt,
-- the hourly sweep or `callvault storage cleanup` aborts it. No foreign key: a row must outlive
-- whatever happens to its job, until the upload it names is gone.
CREATE TABLE open_uploads (
    upload_id  TEXT NOT NULL PRIMARY KEY,
    object_key TEXT NOT NULL,
    job_id     BIGINT NOT NULL,
    opened_at  BIGINT NOT NULL
);
CREATE INDEX open_uploads_job ON open_uploads (job_id);
CREATE INDEX open_uploads_age ON open_uploads (opened_at);
