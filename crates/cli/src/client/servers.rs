//! `brokeforge servers list|show|create|delete|diagnostics`.

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
    /// Delete a server record.
    Delete { server_id: i64 },
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
            }
        }
        ServersCommand::Delete { server_id } => {
            client
                .call(Method::DELETE, &format!("/api/v1/servers/{server_id}"), None)
                .await?;
            if options.json {
                print_json(&json!({ "deleted": server_id }))
            } else {
                println!("Deleted server {server_id}.")
            }
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
