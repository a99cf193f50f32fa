//! `brokeforge sites list|show|create|set|delete|default|deploy|rollback|deployments|
//! releases|webhook|run|commands|env|files`: the sites of a server, which one is the
//! server's default site, their deployments and releases, their deploy webhook, the
//! commands run in them, their environment file and the files of their directory.
//! Every action that starts a job prints it, or follows it to the end with `--follow`
//! (exit non-zero when it fails). A WordPress site's database password is read from
//! the terminal without echo, or from standard input, never from the command line.

use anyhow::Context;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::php::{segment, started};
use super::{ApiClient, ClientOptions, follow, print_json, print_table, text};

#[derive(clap::Subcommand, Debug)]
pub enum SitesCommand {
    /// List the sites of a server.
    List { server_id: i64 },
    /// Show a site.
    Show { site_id: i64 },
    /// Create a site on a server (a job installs it).
    Create {
        server_id: i64,
        /// The site's domain, such as example.com.
        #[arg(long)]
        domain: String,
        /// Another domain the site serves (repeat for several).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// Serve the www variant of the domain too.
        #[arg(long)]
        www: bool,
        /// static, php (default), laravel or wordpress.
        #[arg(long = "type")]
        site_type: Option<String>,
        /// The PHP version (default: the server's command-line default).
        #[arg(long)]
        php: Option<String>,
        /// The directory nginx serves, relative to the release.
        #[arg(long)]
        web_directory: Option<String>,
        /// The Git repository deployments fetch from.
        #[arg(long)]
        repository: Option<String>,
        /// The branch deployments build (default main).
        #[arg(long)]
        branch: Option<String>,
        /// The host key of your own Git server, a known_hosts line such as
        /// `ssh-keyscan` prints (repeat for several).
        #[arg(long = "git-host-key")]
        git_host_keys: Vec<String>,
        #[command(flatten)]
        wordpress: Box<WordPressOptions>,
        /// Follow the job until it ends; exit non-zero if it fails.
        #[arg(long)]
        follow: bool,
    },
    /// Change a site's deploy settings.
    Set {
        site_id: i64,
        #[arg(long)]
        repository: Option<String>,
        #[arg(long)]
        branch: Option<String>,
        /// How many releases the server keeps (1 to 50).
        #[arg(long)]
        keep_releases: Option<u32>,
        /// A file holding the new deploy script (`-` for standard input).
        #[arg(long)]
        deploy_script: Option<std::path::PathBuf>,
        /// Replace the pinned host keys of your own Git server with these
        /// known_hosts lines (repeat for several).
        #[arg(long = "git-host-key", conflicts_with = "clear_git_host_keys")]
        git_host_keys: Vec<String>,
        /// Remove the pinned host keys of your own Git server.
        #[arg(long)]
        clear_git_host_keys: bool,
    },
    /// Show the deploy key to add to the site's repository, or give the site its own
    /// key (generated on the server) or go back to the server's.
    DeployKey {
        site_id: i64,
        #[arg(long, conflicts_with = "delete")]
        generate: bool,
        #[arg(long)]
        delete: bool,
    },
    /// Make the site the server's default site, which answers requests for names no
    /// site serves (such as the server's IP address), or with --unset make none the
    /// default again (a job).
    Default {
        site_id: i64,
        /// Stop the site being the default: the catch-all page answers again.
        #[arg(long)]
        unset: bool,
        #[arg(long)]
        follow: bool,
    },
    /// Delete a site (a job removes it from the server).
    Delete {
        site_id: i64,
        #[arg(long)]
        follow: bool,
    },
    /// Deploy the head of the site's branch, or a given commit.
    Deploy {
        site_id: i64,
        /// A full commit id to deploy instead of the branch head.
        #[arg(long)]
        commit: Option<String>,
        #[arg(long)]
        follow: bool,
    },
    /// Make a kept release live again.
    Rollback {
        site_id: i64,
        /// The release, such as 20261127093000 (see `brokeforge sites releases`).
        release: String,
        #[arg(long)]
        follow: bool,
    },
    /// List a site's deployments, newest first.
    Deployments { site_id: i64 },
    /// List the releases a site keeps, newest first.
    Releases { site_id: i64 },
    /// Turn the deploy webhook on (a new secret, printed once) or off.
    Webhook {
        site_id: i64,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Run a command in the site's current release, as brokeforge.
    Run {
        site_id: i64,
        /// Seconds before the command is killed (default 120).
        #[arg(long)]
        timeout: Option<u32>,
        /// Wait for the command and print its output; exit non-zero if it fails.
        #[arg(long)]
        follow: bool,
        /// The command, passed to `bash -l -c` as one text.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// List the commands run on a site, newest first.
    Commands { site_id: i64 },
    /// Print the site's environment file (.env, or wp-config.php for WordPress), or
    /// replace it.
    Env {
        site_id: i64,
        /// A file holding the new contents (`-` for standard input).
        #[arg(long)]
        set: Option<std::path::PathBuf>,
    },
    /// Browse the files of the site's directory.
    Files {
        site_id: i64,
        #[command(subcommand)]
        action: FilesAction,
    },
}

/// The settings of a WordPress site, for `brokeforge sites create --type wordpress`.
#[derive(clap::Args, Debug)]
pub struct WordPressOptions {
    /// WordPress: the database WordPress uses.
    #[arg(long)]
    db_name: Option<String>,
    /// WordPress: the database user WordPress logs in as (its password is asked for).
    #[arg(long)]
    db_user: Option<String>,
    /// WordPress: read the database password from the first line of standard input.
    #[arg(long)]
    db_password_stdin: bool,
    /// WordPress: where the database listens (default localhost).
    #[arg(long)]
    db_host: Option<String>,
    /// WordPress: the prefix of WordPress's tables (default wp_).
    #[arg(long)]
    table_prefix: Option<String>,
    /// WordPress: where WordPress is downloaded from (default https://wordpress.org/latest.tar.gz).
    #[arg(long)]
    wordpress_url: Option<String>,
}

/// What `brokeforge sites files` does. Paths are relative to the site's directory
/// (`/home/brokeforge/<domain>`).
#[derive(clap::Subcommand, Debug)]
pub enum FilesAction {
    /// List a directory (the site's directory when PATH is left out).
    Ls { path: Option<String> },
    /// Print a file's bytes (at most 1 MiB).
    Cat { path: String },
    /// Write a file from FILE (`-` or left out: standard input), at most 1 MiB.
    Put {
        path: String,
        file: Option<std::path::PathBuf>,
    },
    /// Delete a file, link or directory.
    Rm { path: String },
}

/// Reads FILE, or standard input for `-` or no file.
fn read_input(file: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    match file {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        }
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            Ok(bytes)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).context("cannot write to standard output")?;
    stdout.flush().context("cannot write to standard output")
}

async fn env(
    client: &ApiClient,
    options: &ClientOptions,
    site_id: i64,
    set: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/sites/{site_id}/env");
    let Some(file) = set else {
        let env = client.get(&path).await?;
        if options.json {
            print_json(&env);
        } else if env["exists"] == true {
            write_stdout(env["contents"].as_str().unwrap_or("").as_bytes())?;
        } else {
            eprintln!("The site has no {} yet.", text(&env, "/file"));
        }
        return Ok(());
    };
    let contents = String::from_utf8(read_input(Some(&file))?)
        .map_err(|_| anyhow::anyhow!("the environment file must be UTF-8 text"))?;
    let written = client
        .call(Method::PUT, &path, Some(&json!({ "contents": contents })))
        .await?;
    if options.json {
        print_json(&written);
    } else if written["changed"] == true {
        println!("Saved {}.", text(&written, "/file"));
    } else {
        println!(
            "{} already held exactly this; nothing changed.",
            text(&written, "/file")
        );
    }
    Ok(())
}

async fn files(client: &ApiClient, options: &ClientOptions, site_id: i64, action: FilesAction) -> anyhow::Result<()> {
    let url = format!("/api/v1/sites/{site_id}/files");
    match action {
        FilesAction::Ls { path } => {
            let path = path.unwrap_or_default();
            let (content_type, bytes) = client.raw(Method::GET, &url, &[("path", &path)], None).await?;
            if !content_type.starts_with("application/json") {
                anyhow::bail!("{path} is a file; print it with `brokeforge sites files {site_id} cat {path}`");
            }
            let listing: Value = serde_json::from_slice(&bytes).context("the control plane sent invalid JSON")?;
            if options.json {
                print_json(&listing);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = listing["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|entry| {
                    let mut name = entry["name"].as_str().unwrap_or("").to_owned();
                    match entry["kind"].as_str() {
                        Some("directory") => name.push('/'),
                        Some("symbolic-link") => name = format!("{name} -> {}", text(entry, "/link_target")),
                        _ => {}
                    }
                    vec![text(entry, "/kind"), text(entry, "/size"), name]
                })
                .collect();
            if rows.is_empty() {
                println!("The directory is empty.");
            } else {
                print_table(&["KIND", "SIZE", "NAME"], &rows);
            }
            Ok(())
        }
        FilesAction::Cat { path } => {
            let (content_type, bytes) = client.raw(Method::GET, &url, &[("path", &path)], None).await?;
            if content_type.starts_with("application/json") {
                anyhow::bail!("{path} is a directory; list it with `brokeforge sites files {site_id} ls {path}`");
            }
            write_stdout(&bytes)
        }
        FilesAction::Put { path, file } => {
            let bytes = read_input(file.as_deref())?;
            let (_, answer) = client.raw(Method::PUT, &url, &[("path", &path)], Some(bytes)).await?;
            let written: Value = serde_json::from_slice(&answer).context("the control plane sent invalid JSON")?;
            if options.json {
                print_json(&written);
            } else {
                println!("Wrote {} ({} bytes).", text(&written, "/path"), text(&written, "/size"));
            }
            Ok(())
        }
        FilesAction::Rm { path } => {
            let (_, answer) = client.raw(Method::DELETE, &url, &[("path", &path)], None).await?;
            let deleted: Value = serde_json::from_slice(&answer).context("the control plane sent invalid JSON")?;
            if options.json {
                print_json(&deleted);
            } else if deleted["deleted"] == true {
                println!("Deleted {}.", text(&deleted, "/path"));
            } else {
                println!("{} was gone already.", text(&deleted, "/path"));
            }
            Ok(())
        }
    }
}

fn site_rows(sites: &Value) -> Vec<Vec<String>> {
    sites
        .as_array()
        .into_iter()
        .flatten()
        .map(|site| {
            vec![
                text(site, "/id"),
                text(site, "/domain"),
                text(site, "/site_type"),
                text(site, "/php_version"),
                text(site, "/status"),
                text(site, "/current_release"),
                short(site["last_deployed_commit"].as_str()),
            ]
        })
        .collect()
}

fn short(commit: Option<&str>) -> String {
    match commit {
        Some(commit) => commit.chars().take(7).collect(),
        None => "-".to_owned(),
    }
}

/// Follows a started deployment or rollback, printing its log as it grows.
async fn follow_deployment(
    client: &ApiClient,
    options: &ClientOptions,
    site_id: i64,
    started_deployment: &Value,
    follow: bool,
) -> anyhow::Result<()> {
    if !follow {
        return started(client, options, &started_deployment["job"], false).await;
    }
    let job_id = started_deployment["job"]["id"].as_i64().unwrap_or(0);
    let log_path = format!(
        "/api/v1/sites/{site_id}/deployments/{}",
        started_deployment["deployment"]["id"].as_i64().unwrap_or(0)
    );
    follow::follow_with_log(client, job_id, options.json, Some(&log_path)).await
}

fn show_site(site: &Value) {
    for (label, pointer) in [
        ("ID", "/id"),
        ("Domain", "/domain"),
        ("Type", "/site_type"),
        ("PHP", "/php_version"),
        ("Status", "/status"),
        ("Default site", "/is_default"),
        ("Document root", "/document_root"),
        ("Repository", "/git_repository"),
        ("Branch", "/git_branch"),
        ("Keep releases", "/keep_releases"),
        ("Live release", "/current_release"),
        ("Last commit", "/last_deployed_commit"),
        ("Webhook", "/webhook_enabled"),
        ("Deploy key", "/deploy_key"),
        ("Error", "/error"),
    ] {
        println!("{label:<14} {}", text(site, pointer));
    }
    let aliases: Vec<&str> = site["aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !aliases.is_empty() {
        println!("{:<14} {}", "Aliases", aliases.join(", "));
    }
    for line in site["git_host_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        println!("{:<14} {line}", "Git host key");
    }
    println!("Deploy script:");
    for line in site["deploy_script"].as_str().unwrap_or("").lines() {
        println!("  {line}");
    }
}

/// Prints a command run's status, exit code and output.
fn show_run(run: &Value) {
    println!(
        "Command #{} {}: exit code {}",
        text(run, "/id"),
        text(run, "/status"),
        text(run, "/exit_code")
    );
    let output = run["output"].as_str().unwrap_or("");
    if !output.is_empty() {
        print!("{output}");
        if !output.ends_with('\n') {
            println!();
        }
    }
    if let Some(error) = run["error"].as_str() {
        eprintln!("{error}");
    }
}

pub async fn run(options: &ClientOptions, command: SitesCommand) -> anyhow::Result<()> {
    let client = ApiClient::from_options(options)?;
    let client = &client;
    match command {
        SitesCommand::List { server_id } => {
            let page = client.get(&format!("/api/v1/servers/{server_id}/sites")).await?;
            if options.json {
                print_json(&page);
            } else {
                let rows = site_rows(&page["data"]);
                if rows.is_empty() {
                    println!(
                        "No sites yet. Create one with `brokeforge sites create {server_id} --domain example.com`."
                    );
                } else {
                    print_table(&["ID", "DOMAIN", "TYPE", "PHP", "STATUS", "RELEASE", "COMMIT"], &rows);
                }
            }
            Ok(())
        }
        SitesCommand::Show { site_id } => {
            let site = client.get(&format!("/api/v1/sites/{site_id}")).await?;
            if options.json {
                print_json(&site)
            } else {
                show_site(&site)
            }
            Ok(())
        }
        SitesCommand::Create {
            server_id,
            domain,
            aliases,
            www,
            site_type,
            php,
            web_directory,
            repository,
            branch,
            git_host_keys,
            wordpress,
            follow,
        } => {
            let WordPressOptions {
                db_name,
                db_user,
                db_password_stdin,
                db_host,
                table_prefix,
                wordpress_url,
            } = *wordpress;
            let is_wordpress = site_type.as_deref().map(str::to_ascii_lowercase).as_deref() == Some("wordpress");
            let mut body = Map::new();
            body.insert("domain".into(), json!(domain));
            if !git_host_keys.is_empty() {
                body.insert("git_host_keys".into(), json!(git_host_keys));
            }
            body.insert("aliases".into(), json!(aliases));
            body.insert("www".into(), json!(www));
            for (name, value) in [
                ("site_type", site_type),
                ("php_version", php),
                ("web_directory", web_directory),
                ("git_repository", repository),
                ("git_branch", branch),
                ("database_name", db_name),
                ("database_user", db_user),
                ("database_host", db_host),
                ("table_prefix", table_prefix),
                ("wordpress_download_url", wordpress_url),
            ] {
                if let Some(value) = value {
                    body.insert(name.into(), json!(value));
                }
            }
            if is_wordpress || db_password_stdin {
                let password = if db_password_stdin {
                    super::login::read_line()?
                } else {
                    super::login::prompt_secret("Database password: ")?
                };
                body.insert("database_password".into(), json!(password));
            }
            let path = format!("/api/v1/servers/{server_id}/sites");
            let created = client.call(Method::POST, &path, Some(&Value::Object(body))).await?;
            if !options.json && !follow {
                println!(
                    "Created site #{} ({}).",
                    text(&created, "/site/id"),
                    text(&created, "/site/domain")
                );
            }
            started(client, options, &created["job"], follow).await
        }
        SitesCommand::Set {
            site_id,
            repository,
            branch,
            keep_releases,
            deploy_script,
            git_host_keys,
            clear_git_host_keys,
        } => {
            let mut body = Map::new();
            if clear_git_host_keys || !git_host_keys.is_empty() {
                body.insert("git_host_keys".into(), json!(git_host_keys));
            }
            if let Some(repository) = repository {
                body.insert("git_repository".into(), json!(repository));
            }
            if let Some(branch) = branch {
                body.insert("git_branch".into(), json!(branch));
            }
            if let Some(keep) = keep_releases {
                body.insert("keep_releases".into(), json!(keep));
            }
            if let Some(path) = deploy_script {
                let script = if path.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin()).context("cannot read the deploy script from stdin")?
                } else {
                    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
                };
                body.insert("deploy_script".into(), json!(script));
            }
            let site = client
                .call(
                    Method::PATCH,
                    &format!("/api/v1/sites/{site_id}"),
                    Some(&Value::Object(body)),
                )
                .await?;
            if options.json {
                print_json(&site)
            } else {
                println!("Saved the deploy settings of {}.", text(&site, "/domain"));
            }
            Ok(())
        }
        SitesCommand::Default { site_id, unset, follow } => {
            let method = if unset { Method::DELETE } else { Method::POST };
            let started_change = client
                .call(method, &format!("/api/v1/sites/{site_id}/default"), None)
                .await?;
            if !options.json && !follow {
                if unset {
                    println!(
                        "No site will be the default of the server in place of {}.",
                        text(&started_change, "/site/domain")
                    );
                } else {
                    println!(
                        "{} will be the server's default site.",
                        text(&started_change, "/site/domain")
                    );
                }
            }
            started(client, options, &started_change["job"], follow).await
        }
        SitesCommand::Delete { site_id, follow } => {
            let removed = client
                .call(Method::DELETE, &format!("/api/v1/sites/{site_id}"), None)
                .await?;
            started(client, options, &removed["job"], follow).await
        }
        SitesCommand::Deploy {
            site_id,
            commit,
            follow,
        } => {
            let body = match commit {
                Some(commit) => json!({ "commit": commit }),
                None => json!({}),
            };
            let path = format!("/api/v1/sites/{site_id}/deployments");
            let started_deployment = client.call(Method::POST, &path, Some(&body)).await?;
            if !options.json && !follow {
                println!(
                    "Deployment #{} queued (release {}).",
                    text(&started_deployment, "/deployment/id"),
                    text(&started_deployment, "/deployment/release")
                );
            }
            follow_deployment(client, options, site_id, &started_deployment, follow).await
        }
        SitesCommand::Rollback {
            site_id,
            release,
            follow,
        } => {
            let path = format!("/api/v1/sites/{site_id}/rollback");
            let started_rollback = client
                .call(Method::POST, &path, Some(&json!({ "release": release })))
                .await?;
            follow_deployment(client, options, site_id, &started_rollback, follow).await
        }
        SitesCommand::DeployKey {
            site_id,
            generate,
            delete,
        } => {
            let path = format!("/api/v1/sites/{site_id}/deploy-key");
            let key = if generate {
                client.call(Method::POST, &path, None).await?
            } else if delete {
                client.call(Method::DELETE, &path, None).await?
            } else {
                client.get(&path).await?
            };
            if options.json {
                print_json(&key);
            } else {
                match key["kind"].as_str() {
                    Some("site") => eprintln!("The site's own deploy key (only this site's deployments use it):"),
                    _ => eprintln!("The server's deploy key (shared by its sites):"),
                }
                match key["public_key"].as_str() {
                    Some(public_key) => println!("{public_key}"),
                    None => eprintln!("(not known yet: it is recorded when the server is bootstrapped)"),
                }
                eprintln!(
                    "Add it to the repository's deploy keys (GitHub: Settings > Deploy keys; GitLab: Settings > \
                     Repository > Deploy keys; Bitbucket: Repository settings > Access keys)."
                );
            }
            Ok(())
        }
        SitesCommand::Deployments { site_id } => {
            let page = client.get(&format!("/api/v1/sites/{site_id}/deployments")).await?;
            if options.json {
                print_json(&page);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|deployment| {
                    vec![
                        text(deployment, "/id"),
                        text(deployment, "/trigger"),
                        short(deployment["commit"].as_str()),
                        text(deployment, "/release"),
                        text(deployment, "/status"),
                        match deployment["duration_seconds"].as_i64() {
                            Some(seconds) => format!("{seconds}s"),
                            None => "-".to_owned(),
                        },
                        text(deployment, "/job_id"),
                        deployment["message"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No deployments yet.");
            } else {
                print_table(
                    &["ID", "TRIGGER", "COMMIT", "RELEASE", "STATUS", "TOOK", "JOB", "MESSAGE"],
                    &rows,
                );
            }
            Ok(())
        }
        SitesCommand::Releases { site_id } => {
            let list = client.get(&format!("/api/v1/sites/{site_id}/releases")).await?;
            if options.json {
                print_json(&list);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|release| {
                    vec![
                        text(release, "/release"),
                        short(release["commit"].as_str()),
                        if release["is_current"] == true {
                            "live".to_owned()
                        } else {
                            String::new()
                        },
                        release["message"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No releases yet: deploy the site first.");
            } else {
                print_table(&["RELEASE", "COMMIT", "LIVE", "MESSAGE"], &rows);
            }
            Ok(())
        }
        SitesCommand::Webhook {
            site_id,
            enable,
            disable,
        } => {
            let path = format!("/api/v1/sites/{site_id}/webhook");
            if disable {
                client.call(Method::DELETE, &path, None).await?;
                if !options.json {
                    println!("The deploy webhook is off.");
                }
                return Ok(());
            }
            if !enable {
                anyhow::bail!("choose --enable (a new secret) or --disable");
            }
            let created = client.call(Method::POST, &path, None).await?;
            if options.json {
                print_json(&created);
            } else {
                println!("Webhook secret (shown this once): {}", text(&created, "/secret"));
                for (provider, url) in created["urls"].as_object().into_iter().flatten() {
                    println!("  {provider:<8} {}", url.as_str().unwrap_or(""));
                }
            }
            Ok(())
        }
        SitesCommand::Run {
            site_id,
            timeout,
            follow,
            command,
        } => {
            let mut body = json!({ "command": command.join(" ") });
            if let Some(timeout) = timeout {
                body["timeout_seconds"] = json!(timeout);
            }
            let path = format!("/api/v1/sites/{site_id}/commands");
            let started_run = client.call(Method::POST, &path, Some(&body)).await?;
            let run_id = started_run["run"]["id"].as_i64().unwrap_or(0);
            if !follow {
                if options.json {
                    print_json(&started_run);
                } else {
                    println!(
                        "Command #{run_id} queued (job #{}). See it with `brokeforge sites commands {site_id}`.",
                        text(&started_run, "/job/id")
                    );
                }
                return Ok(());
            }
            let job_id = started_run["job"]["id"].as_i64().unwrap_or(0);
            let followed = if options.json {
                follow::wait_quietly(client, job_id).await
            } else {
                follow::follow(client, job_id, false).await
            };
            let run = client
                .get(&format!(
                    "/api/v1/sites/{site_id}/commands/{}",
                    segment(&run_id.to_string())
                ))
                .await?;
            if options.json {
                print_json(&run);
            } else {
                show_run(&run);
            }
            followed
        }
        SitesCommand::Env { site_id, set } => env(client, options, site_id, set).await,
        SitesCommand::Files { site_id, action } => files(client, options, site_id, action).await,
        SitesCommand::Commands { site_id } => {
            let page = client.get(&format!("/api/v1/sites/{site_id}/commands")).await?;
            if options.json {
                print_json(&page);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|run| {
                    vec![
                        text(run, "/id"),
                        text(run, "/status"),
                        text(run, "/exit_code"),
                        text(run, "/actor"),
                        run["command"]
                            .as_str()
                            .unwrap_or("")
                            .lines()
                            .next()
                            .unwrap_or("")
                            .chars()
                            .take(60)
                            .collect(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No commands run yet.");
            } else {
                print_table(&["ID", "STATUS", "EXIT", "BY", "COMMAND"], &rows);
            }
            Ok(())
        }
    }
}
