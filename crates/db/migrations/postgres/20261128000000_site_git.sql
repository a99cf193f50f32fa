-- Per-site Git access and deployment output. Keep in step with the other dialect.

-- The public half of a site's own deploy key, generated on the server (the private
-- half never leaves it); NULL while the site uses the server's deploy key.
ALTER TABLE server_sites ADD COLUMN deploy_key_public TEXT;
-- Extra known_hosts lines for the site's own Git server, one per line, pinned before
-- every fetch next to the built-in keys of github.com, gitlab.com and bitbucket.org.
ALTER TABLE server_sites ADD COLUMN git_host_keys TEXT NOT NULL DEFAULT '';

-- The end of a deployment's output (its Git, build and switch steps), written while
-- it runs so pages and the CLI can follow it.
ALTER TABLE site_deployments ADD COLUMN output TEXT NOT NULL DEFAULT '';
