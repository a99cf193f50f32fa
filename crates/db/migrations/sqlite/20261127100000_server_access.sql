-- The account name each SSH role logs in as, and the record key of server packages (SQLite).
-- Keep in step with ../postgres.

-- Roles are `root` and `brokeforge`; the account behind a role normally has the same
-- name, but a server may name it differently.
ALTER TABLE server_credentials ADD COLUMN login_name TEXT;

-- One record per package on a server (PHP versions are told apart by their name).
CREATE UNIQUE INDEX server_packages_identity ON server_packages(server_id, package_type, package_name);
CREATE UNIQUE INDEX server_site_packages_identity ON server_site_packages(site_id, service_type, service_name);
