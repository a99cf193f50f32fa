-- The account name each SSH role logs in as, and the record key of server packages (SQLite).
-- Keep in step with ../postgres.

-- Roles are `root` and `brokeforge`; the account behind a role normally has the same
-- name, but a server may name it differently.
ALTER TABLE server_credentials ADD COLUMN login_name TEXT;

-- One record per package on a server; packages installed side by side in several
-- versions (PHP) keep one record per version, told apart by `instance`.
ALTER TABLE server_packages ADD COLUMN instance TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX server_packages_identity ON server_packages(server_id, package_type, package_name, instance);
CREATE UNIQUE INDEX server_site_packages_identity ON server_site_packages(site_id, service_type, service_name);
