-- WordPress sites' settings (SQLite). Keep in step with ../postgres.

-- The database WordPress uses and where it is downloaded from, one row per WordPress
-- site. The database password is sealed (associated data
-- `site_wordpress:<site_id>:database_password`), never stored in clear.
CREATE TABLE site_wordpress (
    site_id INTEGER PRIMARY KEY REFERENCES server_sites(id) ON DELETE CASCADE,
    database_name TEXT NOT NULL,
    database_user TEXT NOT NULL,
    database_host TEXT NOT NULL,
    table_prefix TEXT NOT NULL,
    database_password_sealed BLOB NOT NULL,
    download_url TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
