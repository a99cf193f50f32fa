-- Sessions, sign-in throttling, first-run setup and the audit log (SQLite).
-- Keep in step with ../postgres. Times compared in SQL are epoch milliseconds.

-- Server-side sessions. The cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    created_at_ms BIGINT NOT NULL,
    last_seen_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expiry ON sessions(expires_at_ms);

-- Failed sign-ins per key (an email address or a client address), for lockout.
CREATE TABLE sign_in_throttle (
    throttle_key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_started_at_ms BIGINT NOT NULL,
    locked_until_ms BIGINT
);

-- One-time first-run setup tokens (only the SHA-256 is stored).
CREATE TABLE setup_tokens (
    token_hash BLOB PRIMARY KEY,
    expires_at_ms BIGINT NOT NULL
);

-- Who did what to which server, and when. Rows outlive the servers they name.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    server_id BIGINT,
    target TEXT,
    summary TEXT NOT NULL,
    ip TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX audit_events_user ON audit_events(user_id, id);
CREATE INDEX audit_events_server ON audit_events(server_id, id);
