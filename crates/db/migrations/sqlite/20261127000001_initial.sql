-- BrokeForge initial schema (SQLite). Keep in step with ../postgres.
-- Timestamps are RFC 3339 text written by the application; the job queue uses
-- integer milliseconds since the Unix epoch for exact comparisons.
-- Secret values live only in *_sealed BLOB columns (XChaCha20-Poly1305, AAD bound to the row).

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_prefix TEXT NOT NULL UNIQUE,
    token_hash BLOB NOT NULL,
    scopes TEXT NOT NULL,
    expires_at TEXT,
    last_used_at TEXT,
    revoked_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE servers (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL DEFAULT 'custom',
    public_ip TEXT NOT NULL,
    private_ip TEXT,
    ssh_port INTEGER NOT NULL DEFAULT 22,
    connection_status TEXT NOT NULL DEFAULT 'pending',
    provision_status TEXT NOT NULL DEFAULT 'pending',
    provision_state TEXT NOT NULL DEFAULT '{}',
    provision_config TEXT NOT NULL DEFAULT '{}',
    os_name TEXT,
    os_version TEXT,
    os_codename TEXT,
    host_key TEXT,
    host_key_pinned_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (user_id, public_ip, ssh_port)
);
CREATE INDEX servers_user ON servers(user_id);

CREATE TABLE server_credentials (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    ssh_user TEXT NOT NULL CHECK (ssh_user IN ('root', 'brokeforge')),
    private_key_sealed BLOB NOT NULL,
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (server_id, ssh_user)
);

CREATE TABLE server_packages (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    package_type TEXT NOT NULL,
    package_name TEXT NOT NULL,
    package_version TEXT,
    configuration TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX server_packages_server ON server_packages(server_id, package_type, package_name);

CREATE TABLE server_package_events (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    job_id INTEGER,
    service_type TEXT NOT NULL,
    provision_type TEXT NOT NULL CHECK (provision_type IN ('install', 'uninstall', 'update')),
    milestone TEXT NOT NULL,
    current_step INTEGER NOT NULL,
    total_steps INTEGER NOT NULL,
    details TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    error_log TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX server_package_events_server ON server_package_events(server_id, id);
CREATE INDEX server_package_events_job ON server_package_events(job_id, id);

CREATE TABLE server_sites (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    site_type TEXT NOT NULL,
    document_root TEXT NOT NULL,
    php_version TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    configuration TEXT NOT NULL DEFAULT '{}',
    git_repository TEXT,
    git_branch TEXT,
    webhook_secret_sealed BLOB,
    last_deployed_commit TEXT,
    last_deployed_at TEXT,
    error_log TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (server_id, domain)
);

CREATE TABLE server_site_packages (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    site_id INTEGER NOT NULL REFERENCES server_sites(id) ON DELETE CASCADE,
    service_name TEXT NOT NULL,
    service_type TEXT NOT NULL,
    configuration TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    installed_at TEXT,
    uninstalled_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX server_site_packages_site ON server_site_packages(site_id, service_type, service_name);

CREATE TABLE server_site_package_events (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    site_id INTEGER NOT NULL REFERENCES server_sites(id) ON DELETE CASCADE,
    job_id INTEGER,
    service_type TEXT NOT NULL,
    provision_type TEXT NOT NULL CHECK (provision_type IN ('install', 'uninstall', 'update')),
    milestone TEXT NOT NULL,
    current_step INTEGER NOT NULL,
    total_steps INTEGER NOT NULL,
    details TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    error_log TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX server_site_package_events_site ON server_site_package_events(site_id, id);
CREATE INDEX server_site_package_events_job ON server_site_package_events(job_id, id);

-- The durable job queue (crate brokeforge-queue). Times are epoch milliseconds.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    subject TEXT,
    exclusivity_key TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    priority INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    timeout_ms BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_claimable ON jobs(priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_leases ON jobs(lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_subject ON jobs(subject, id);
CREATE INDEX jobs_key_queued ON jobs(exclusivity_key) WHERE state = 'queued';
-- At most one running job per exclusivity key, enforced by the database itself.
CREATE UNIQUE INDEX jobs_one_running_per_key ON jobs(exclusivity_key) WHERE state = 'running';

-- Values the control plane keeps about itself, such as the master-key check.
CREATE TABLE control_plane_settings (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    updated_at TEXT NOT NULL
);
