-- Exports for access requests made through the admin API (POST /admin/exports), so that their
-- state, progress and file survive a restart. `selection` is the request as JSON
-- ({"participant": …} or {"recordings": […]}); the file is `{id}.tar` in admin.export_dir.
-- A queued export, or a running one whose lease lapsed (its replica stopped), is claimed by
-- the next free replica, which continues the partial file. `removed_at` is set once the file
-- was deleted after admin.export_keep_hours.
CREATE TABLE exports (
    id           TEXT PRIMARY KEY,
    selection    TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'removed')),
    files_total  BIGINT,
    bytes_total  BIGINT,
    files_done   BIGINT NOT NULL DEFAULT 0,
    bytes_done   BIGINT NOT NULL DEFAULT 0,
    error        TEXT,
    -- The claim's own token: a replica whose lease lapsed and was taken over stops writing.
    lease        TEXT,
    lease_until  BIGINT,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    removed_at   BIGINT
);
CREATE INDEX exports_state ON exports (state, created_at);
