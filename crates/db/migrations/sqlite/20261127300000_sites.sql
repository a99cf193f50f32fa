-- Sites, deployments and site commands (SQLite). Keep in step with ../postgres.

-- What a site is made of beyond the initial columns. `aliases` is a JSON list of
-- extra domains; `web_directory` is relative to the release (empty for its root);
-- `job_id` names the job that installs or removes the site. The webhook is on
-- while `webhook_secret_sealed` holds a secret.
ALTER TABLE server_sites ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';
ALTER TABLE server_sites ADD COLUMN www BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE server_sites ADD COLUMN web_directory TEXT NOT NULL DEFAULT '';
ALTER TABLE server_sites ADD COLUMN deploy_script TEXT NOT NULL DEFAULT '';
ALTER TABLE server_sites ADD COLUMN keep_releases INTEGER NOT NULL DEFAULT 5;
ALTER TABLE server_sites ADD COLUMN current_release TEXT;
ALTER TABLE server_sites ADD COLUMN job_id BIGINT;
CREATE INDEX server_sites_server ON server_sites(server_id, id);

-- One row per deployment or rollback: one job each. `delivery_id` is the webhook
-- delivery that asked for it, unique per site so a replayed delivery does nothing.
CREATE TABLE site_deployments (
    id INTEGER PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES server_sites(id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    job_id BIGINT,
    trigger_kind TEXT NOT NULL CHECK (trigger_kind IN ('manual', 'webhook', 'rollback')),
    actor TEXT NOT NULL,
    provider TEXT,
    delivery_id TEXT,
    commit_sha TEXT,
    branch TEXT,
    author TEXT,
    message TEXT,
    release_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    error TEXT,
    started_at TEXT,
    finished_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (site_id, delivery_id)
);
CREATE INDEX site_deployments_site ON site_deployments(site_id, id);

-- Commands run in a site's current release, with their exit code and the tail of
-- their output.
CREATE TABLE site_command_runs (
    id INTEGER PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES server_sites(id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    job_id BIGINT,
    actor TEXT NOT NULL,
    command TEXT NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    exit_code INTEGER,
    output_tail TEXT NOT NULL DEFAULT '',
    error TEXT,
    started_at TEXT,
    finished_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX site_command_runs_site ON site_command_runs(site_id, id);
