//! `brokeforge servers list|show|create|delete|diagnostics`, and `servers php …` and
//! `servers firewall …` (see [`super::php`] and [`super::firewall`]).

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{ApiClient, ClientOptions, follow, print_json, print_table, text};

#[derive(clap::Subcommand, Debug)]
pub enum ServersCommand {
    /// List your servers.
    List {
        /// At most this many (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one server.
    Show { server_id: i64 },
    /// Create a server record.
    Create {
        #[arg(long)]
        name: String,
        /// The server's public IP address or host name.
        #[arg(long)]
        address: String,
        #[arg(long)]
        ssh_port: Option<u16>,
        /// custom, hetzner, digitalocean, aws, linode, vultr or other.
        #[arg(long)]
        provider: Option<String>,
        /// 7.4 to 8.5.
        #[arg(long)]
        php: Option<String>,
        /// none, mysql, mariadb or postgresql.
        #[arg(long)]
        database: Option<String>,
    },
    /// Delete a server, its records and its sealed keys.
    Delete {
        server_id: i64,
        /// First remove BrokeForge's access from the server (the brokeforge user, its
        /// sudo rules and BrokeForge's keys); the server is deleted when that succeeds.
        #[arg(long)]
        remove_access: bool,
        /// With --remove-access: follow the job until it ends.
        #[arg(long)]
        follow: bool,
    },
    /// Show the server's bootstrap line, issue a new one, or revoke it.
    BootstrapLine {
        server_id: i64,
        /// Issue a new line (the old one stops working).
        #[arg(long, conflicts_with = "revoke")]
        new: bool,
        #[arg(long)]
        revoke: bool,
    },
    /// Show where the server's onboarding stands (numbered stages).
    Provisioning {
        server_id: i64,
        /// Wait until provisioning ends; exit non-zero when it stops on a failure.
        #[arg(long)]
        wait: bool,
    },
    /// Resume onboarding from the step that failed.
    Resume {
        server_id: i64,
        #[arg(long)]
        follow: bool,
    },
    /// Provision the server again (packages already in place report no change).
    Provision {
        server_id: i64,
        #[arg(long)]
        follow: bool,
    },
    /// Run diagnostics on a server (a job with live milestones).
    Diagnostics {
        server_id: i64,
        #[arg(long)]
        steps: Option<u32>,
        /// Pause per step, in milliseconds.
        #[arg(long)]
        step_ms: Option<u32>,
        /// Make the run fail at this step (for trying out failure reports).
        #[arg(long)]
        fail_at_step: Option<u32>,
        #[arg(long)]
        fail_command: Option<String>,
        #[arg(long)]
        fail_exit_code: Option<u8>,
        #[arg(long)]
        fail_stderr: Option<String>,
        /// Follow the job with a progress bar until it ends; exit non-zero if it fails.
        #[arg(long)]
        follow: bool,
    },
    /// PHP versions, the command-line default and extensions of a server.
    Php {
        #[command(subcommand)]
        command: super::php::PhpCommand,
    },
    /// Firewall rules of a server.
    Firewall {
        #[command(subcommand)]
        command: super::firewall::FirewallCommand,
    },
}

fn print_server(server: &Value) {
    for (label, pointer) in [
        ("Id", "/id"),
        ("Name", "/name"),
        ("Address", "/public_address"),
        ("SSH port", "/ssh_port"),
        ("Provider", "/provider_label"),
        ("PHP", "/php_version"),
        ("Database", "/database_label"),
        ("Connection", "/connection_status"),
        ("Created", "/created_at"),
    ] {
        println!("{label:<11} {}", text(server, pointer));
    }
}

pub async fn run(options: &ClientOptions, command: ServersCommand) -> anyhow::Result<()> {
    let client = ApiClient::from_options(options)?;
    match command {
        ServersCommand::Php { command } => return super::php::run(&client, options, command).await,
        ServersCommand::Firewall { command } => return super::firewall::run(&client, options, command).await,
        ServersCommand::List { limit } => {
            let page = client.get(&format!("/api/v1/servers?limit={limit}")).await?;
            if options.json {
                print_json(&page);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|server| {
                    vec![
                        text(server, "/id"),
                        text(server, "/name"),
                        format!("{}:{}", text(server, "/public_address"), text(server, "/ssh_port")),
                        text(server, "/php_version"),
                        text(server, "/database"),
                        text(server, "/connection_status"),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No servers yet. Create one with `brokeforge servers create --name NAME --address IP`.");
            } else {
                print_table(&["ID", "NAME", "ADDRESS", "PHP", "DATABASE", "STATUS"], &rows);
            }
        }
        ServersCommand::Show { server_id } => {
            let server = client.get(&format!("/api/v1/servers/{server_id}")).await?;
            if options.json {
                print_json(&server)
            } else {
                print_server(&server)
            }
        }
        ServersCommand::Create {
            name,
            address,
            ssh_port,
            provider,
            php,
            database,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("public_address".into(), json!(address));
            if let Some(port) = ssh_port {
                body.insert("ssh_port".into(), json!(port));
            }
            if let Some(provider) = provider {
                body.insert("provider".into(), json!(provider));
            }
            if let Some(php) = php {
                body.insert("php_version".into(), json!(php));
            }
            if let Some(database) = database {
                body.insert("database".into(), json!(database));
            }
            let server = client
                .call(Method::POST, "/api/v1/servers", Some(&Value::Object(body)))
                .await?;
            if options.json {
                print_json(&server);
            } else {
                println!("Created server {} ({}).", text(&server, "/name"), text(&server, "/id"));
                println!();
                super::onboarding::print_line(&server["bootstrap_line"]);
                println!(
                    "Then watch it with `brokeforge servers provisioning {} --wait`.",
                    text(&server, "/id")
                );
            }
        }
        ServersCommand::Delete {
            server_id,
            remove_access,
            follow,
        } => {
            let path = if remove_access {
                format!("/api/v1/servers/{server_id}?remove_access=true")
            } else {
                format!("/api/v1/servers/{server_id}")
            };
            let answer = client.call(Method::DELETE, &path, None).await?;
            if let Some(job_id) = answer["id"].as_i64().filter(|_| remove_access) {
                if follow {
                    let followed = follow::follow(&client, job_id, options.json).await;
                    // A successful removal deletes the server, and its jobs with it: the
                    // job then answers 404, and the server's absence is the success.
                    if followed.is_err() && !client.exists(&format!("/api/v1/servers/{server_id}")).await? {
                        if !options.json {
                            println!("BrokeForge's access was removed and server {server_id} deleted.");
                        }
                        return Ok(());
                    }
                    return followed;
                }
                if options.json {
                    print_json(&answer)
                } else {
                    println!("Removing BrokeForge's access (job #{job_id}); the server is deleted when that succeeds.")
                }
            } else if options.json {
                print_json(&json!({ "deleted": server_id }))
            } else {
                println!("Deleted server {server_id}.")
            }
        }
        ServersCommand::BootstrapLine { server_id, new, revoke } => {
            return super::onboarding::bootstrap_line(&client, options, server_id, new, revoke).await;
        }
        ServersCommand::Provisioning { server_id, wait } => {
            return super::onboarding::provisioning(&client, options, server_id, wait).await;
        }
        ServersCommand::Resume { server_id, follow } => {
            return super::onboarding::start(&client, options, server_id, true, follow).await;
        }
        ServersCommand::Provision { server_id, follow } => {
            return super::onboarding::start(&client, options, server_id, false, follow).await;
        }
        ServersCommand::Diagnostics {
            server_id,
            steps,
            step_ms,
            fail_at_step,
            fail_command,
            fail_exit_code,
            fail_stderr,
            follow,
        } => {
            let body = json!({
                "steps": steps, "step_ms": step_ms, "fail_at_step": fail_at_step, "fail_command": fail_command,
                "fail_exit_code": fail_exit_code, "fail_stderr": fail_stderr,
            });
            let job = client
                .call(
                    Method::POST,
                    &format!("/api/v1/servers/{server_id}/diagnostics"),
                    Some(&body),
                )
                .await?;
            let job_id = job["id"].as_i64().unwrap_or(0);
            if follow {
                return follow::follow(&client, job_id, options.json).await;
            }
            if options.json {
                print_json(&job)
            } else {
                println!("Started job #{job_id}. Follow it with `brokeforge jobs show {job_id} --follow`.")
            }
        }
    }
    Ok(())
}
