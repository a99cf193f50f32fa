//! `brokeforge servers php list|install|remove|default|ext-install|ext-remove`: the
//! PHP versions of a server, and the jobs that change them. Every change starts one
//! job; `--follow` watches it to the end.

use reqwest::Method;
use serde_json::{Value, json};

use super::{ApiClient, ClientOptions, follow, print_json, print_table, text};

#[derive(clap::Subcommand, Debug)]
pub enum PhpCommand {
    /// List the installed PHP versions, the command-line default and PHP jobs under way.
    List { server_id: i64 },
    /// Install another PHP version (7.4 to 8.5).
    Install {
        server_id: i64,
        version: String,
        /// Follow the job until it ends; exit non-zero if it fails.
        #[arg(long)]
        follow: bool,
    },
    /// Remove a PHP version (refused while a site uses it or while it is the default).
    Remove {
        server_id: i64,
        version: String,
        #[arg(long)]
        follow: bool,
    },
    /// Make an installed version the one the `php` command runs.
    Default {
        server_id: i64,
        version: String,
        #[arg(long)]
        follow: bool,
    },
    /// Install an extension (such as redis) for a PHP version.
    ExtInstall {
        server_id: i64,
        version: String,
        extension: String,
        #[arg(long)]
        follow: bool,
    },
    /// Remove an extension of a PHP version.
    ExtRemove {
        server_id: i64,
        version: String,
        extension: String,
        #[arg(long)]
        follow: bool,
    },
}

/// Prints the job a change started, or follows it.
pub async fn started(client: &ApiClient, options: &ClientOptions, job: &Value, follow: bool) -> anyhow::Result<()> {
    let job_id = job["id"].as_i64().unwrap_or(0);
    if follow {
        return follow::follow(client, job_id, options.json).await;
    }
    if options.json {
        print_json(job)
    } else {
        println!("Started job #{job_id}. Follow it with `brokeforge jobs show {job_id} --follow`.")
    }
    Ok(())
}

fn list_text(php: &Value) {
    let rows: Vec<Vec<String>> = php["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|installed| {
            let strings = |pointer: &str| {
                let names: Vec<&str> = installed
                    .pointer(pointer)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if names.is_empty() {
                    "-".to_owned()
                } else {
                    names.join(",")
                }
            };
            vec![
                text(installed, "/version"),
                if installed["is_cli_default"] == true {
                    "yes".to_owned()
                } else {
                    String::new()
                },
                text(installed, "/status"),
                strings("/extensions"),
                strings("/sites"),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("No PHP version is recorded on this server yet.");
    } else {
        print_table(&["VERSION", "DEFAULT", "STATUS", "EXTENSIONS", "SITES"], &rows);
    }
    for job in php["pending"].as_array().into_iter().flatten() {
        println!(
            "Under way: job #{} {} ({})",
            text(job, "/job_id"),
            text(job, "/summary"),
            text(job, "/state")
        );
    }
}

pub async fn run(client: &ApiClient, options: &ClientOptions, command: PhpCommand) -> anyhow::Result<()> {
    match command {
        PhpCommand::List { server_id } => {
            let php = client.get(&format!("/api/v1/servers/{server_id}/php")).await?;
            if options.json {
                print_json(&php)
            } else {
                list_text(&php)
            }
            Ok(())
        }
        PhpCommand::Install {
            server_id,
            version,
            follow,
        } => {
            let path = format!("/api/v1/servers/{server_id}/php");
            let job = client
                .call(Method::POST, &path, Some(&json!({ "version": version })))
                .await?;
            started(client, options, &job, follow).await
        }
        PhpCommand::Remove {
            server_id,
            version,
            follow,
        } => {
            let path = format!("/api/v1/servers/{server_id}/php/{}", segment(&version));
            let job = client.call(Method::DELETE, &path, None).await?;
            started(client, options, &job, follow).await
        }
        PhpCommand::Default {
            server_id,
            version,
            follow,
        } => {
            let path = format!("/api/v1/servers/{server_id}/php/{}/cli-default", segment(&version));
            let job = client.call(Method::POST, &path, None).await?;
            started(client, options, &job, follow).await
        }
        PhpCommand::ExtInstall {
            server_id,
            version,
            extension,
            follow,
        } => {
            let path = format!("/api/v1/servers/{server_id}/php/{}/extensions", segment(&version));
            let job = client
                .call(Method::POST, &path, Some(&json!({ "extension": extension })))
                .await?;
            started(client, options, &job, follow).await
        }
        PhpCommand::ExtRemove {
            server_id,
            version,
            extension,
            follow,
        } => {
            let path = format!(
                "/api/v1/servers/{server_id}/php/{}/extensions/{}",
                segment(&version),
                segment(&extension)
            );
            let job = client.call(Method::DELETE, &path, None).await?;
            started(client, options, &job, follow).await
        }
    }
}

/// A value as one path segment: anything but letters, digits, `.`, `-` and `_` is
/// percent-encoded, so typed text cannot change the path.
pub fn segment(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(super::segment("8.3"), "8.3");
        assert_eq!(super::segment("../tokens"), "..%2Ftokens");
        assert_eq!(super::segment("redis?x=1"), "redis%3Fx%3D1");
    }
}
