//! `brokeforge servers firewall list|add|remove`: the firewall rules added to a
//! server, each with its status; adding and removing a rule each start one job, and
//! `--follow` watches it to the end.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::php::started;
use super::{ApiClient, ClientOptions, print_json, print_table, text};

#[derive(clap::Subcommand, Debug)]
pub enum FirewallCommand {
    /// List the rules added to a server, with their status.
    List { server_id: i64 },
    /// Add a rule (the SSH port can never be closed by one).
    Add {
        server_id: i64,
        /// A port (8080) or a range (3000:3005).
        #[arg(long)]
        port: String,
        /// allow (default) or deny.
        #[arg(long)]
        action: Option<String>,
        /// tcp (default) or udp.
        #[arg(long)]
        protocol: Option<String>,
        /// Only traffic from this address or CIDR network (default: every address).
        #[arg(long = "from")]
        source: Option<String>,
        /// A short note shown with the rule.
        #[arg(long)]
        comment: Option<String>,
        /// Follow the job until it ends; exit non-zero if it fails.
        #[arg(long)]
        follow: bool,
    },
    /// Remove a rule.
    Remove {
        server_id: i64,
        rule_id: i64,
        #[arg(long)]
        follow: bool,
    },
}

pub async fn run(client: &ApiClient, options: &ClientOptions, command: FirewallCommand) -> anyhow::Result<()> {
    match command {
        FirewallCommand::List { server_id } => {
            let page = client
                .get(&format!("/api/v1/servers/{server_id}/firewall-rules"))
                .await?;
            if options.json {
                print_json(&page);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|rule| {
                    let source = match rule["source"].as_str() {
                        Some(source) => source.to_owned(),
                        None => "anywhere".to_owned(),
                    };
                    vec![
                        text(rule, "/id"),
                        text(rule, "/action"),
                        format!("{}/{}", text(rule, "/port"), text(rule, "/protocol")),
                        source,
                        text(rule, "/status"),
                        text(rule, "/job_id"),
                        rule["comment"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No rules added yet. Add one with `brokeforge servers firewall add {server_id} --port PORT`.");
            } else {
                print_table(&["ID", "ACTION", "PORT", "FROM", "STATUS", "JOB", "COMMENT"], &rows);
            }
            for rule in page["data"].as_array().into_iter().flatten() {
                if let Some(error) = rule["error"].as_str() {
                    println!("Rule #{} failed: {error}", text(rule, "/id"));
                }
            }
            Ok(())
        }
        FirewallCommand::Add {
            server_id,
            port,
            action,
            protocol,
            source,
            comment,
            follow,
        } => {
            let mut body = Map::new();
            body.insert("port".into(), json!(port));
            for (key, value) in [
                ("action", action),
                ("protocol", protocol),
                ("source", source),
                ("comment", comment),
            ] {
                if let Some(value) = value {
                    body.insert(key.into(), json!(value));
                }
            }
            let answer = client
                .call(
                    Method::POST,
                    &format!("/api/v1/servers/{server_id}/firewall-rules"),
                    Some(&Value::Object(body)),
                )
                .await?;
            if !options.json && !follow {
                println!("Added rule #{}.", text(&answer, "/rule/id"));
            }
            rule_job(client, options, &answer, follow).await
        }
        FirewallCommand::Remove {
            server_id,
            rule_id,
            follow,
        } => {
            let answer = client
                .call(
                    Method::DELETE,
                    &format!("/api/v1/servers/{server_id}/firewall-rules/{rule_id}"),
                    None,
                )
                .await?;
            rule_job(client, options, &answer, follow).await
        }
    }
}

/// Prints the rule and job an action answered (all of it with `--json`), or follows the job.
async fn rule_job(client: &ApiClient, options: &ClientOptions, answer: &Value, follow: bool) -> anyhow::Result<()> {
    if options.json && !follow {
        print_json(answer);
        return Ok(());
    }
    started(client, options, &answer["job"], follow).await
}
