-- Server onboarding: bootstrap lines, the deploy key a server reports, and firewall
-- rules (SQLite). Keep in step with ../postgres. Times compared in SQL are epoch ms.

-- One row per bootstrap line. The token is random (256 bits); only its SHA-256 is
-- used for lookups, and the token itself is kept sealed so the owner's page can show
-- the line again until it is used or expires. `run_nonce` names the one script run
-- that checked in with the line; callbacks of any other run are refused.
CREATE TABLE bootstrap_tokens (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    token_sealed BLOB NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    downloaded_at_ms BIGINT,
    run_nonce TEXT,
    started_at_ms BIGINT,
    completed_at_ms BIGINT,
    revoked_at_ms BIGINT
);
CREATE INDEX bootstrap_tokens_server ON bootstrap_tokens(server_id, id);

-- The public half of the deploy key the bootstrap script made for brokeforge.
ALTER TABLE servers ADD COLUMN deploy_public_key TEXT;

-- Firewall rules a user added after provisioning; one job installs or removes each.
CREATE TABLE firewall_rules (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    rule_action TEXT NOT NULL CHECK (rule_action IN ('allow', 'deny')),
    port TEXT NOT NULL,
    protocol TEXT NOT NULL,
    source TEXT,
    comment TEXT,
    status TEXT NOT NULL,
    job_id BIGINT,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX firewall_rules_server ON firewall_rules(server_id, id);
