//! `brokeforge servers bootstrap-line|provisioning|resume|provision`: the bootstrap
//! line of a server, where its onboarding stands (optionally waiting until it ends),
//! and resuming or repeating provisioning.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::{ApiClient, ClientOptions, follow, print_json, text};

/// Prints the bootstrap line with what to do with it.
pub fn print_line(line: &Value) {
    println!(
        "Run this as root on the server (valid until {}, once):",
        text(line, "/expires_at")
    );
    println!();
    println!("  {}", text(line, "/command"));
    println!();
}

/// `servers bootstrap-line SERVER [--new | --revoke]`.
pub async fn bootstrap_line(
    client: &ApiClient,
    options: &ClientOptions,
    server_id: i64,
    new: bool,
    revoke: bool,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/servers/{server_id}/bootstrap-line");
    if revoke {
        client.call(Method::DELETE, &path, None).await?;
        if options.json {
            print_json(&serde_json::json!({ "revoked": server_id }));
        } else {
            println!("Revoked the bootstrap line of server {server_id}.");
        }
        return Ok(());
    }
    let line = if new {
        client.call(Method::POST, &path, None).await?
    } else {
        client.get(&path).await?
    };
    if options.json {
        print_json(&line);
    } else {
        print_line(&line);
    }
    Ok(())
}

fn print_status(status: &Value) {
    println!(
        "Connection: {}   Provisioning: {}",
        text(status, "/connection_status"),
        text(status, "/provision_status")
    );
    for stage in status["stages"].as_array().into_iter().flatten() {
        let mark = match stage["state"].as_str() {
            Some("done") => "✓",
            Some("running") => "…",
            Some("failed") => "✗",
            _ => " ",
        };
        println!(" {mark} {}. {}", text(stage, "/number"), text(stage, "/label"));
    }
    let ran: Vec<&Value> = status["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|package| package["changed"].is_boolean())
        .collect();
    if !ran.is_empty() {
        println!("Packages of the last pass:");
        for package in ran {
            let outcome = if package["changed"] == true {
                "installed or changed"
            } else {
                "no change"
            };
            println!("   {:<26} {outcome}", text(package, "/label"));
        }
    }
    if let Some(step) = status["provisioning_step"].as_str() {
        println!(
            "Current package: {step} (job #{})",
            text(status, "/provisioning_job_id")
        );
    }
    if let Some(failure) = status["failure"].as_str() {
        println!("Stopped: {failure}");
        println!(
            "Resume with `brokeforge servers resume {}`.",
            text(status, "/server_id")
        );
    }
}

/// `servers provisioning SERVER [--wait]`: the onboarding status; with `--wait`, polls
/// until the server is provisioned (exit 0) or onboarding stops (exit 1).
pub async fn provisioning(
    client: &ApiClient,
    options: &ClientOptions,
    server_id: i64,
    wait: bool,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/servers/{server_id}/provisioning");
    let mut last_printed = String::new();
    loop {
        let mut status = client.get(&path).await?;
        status["server_id"] = Value::from(server_id);
        let finished = status["provision_status"] == "provisioned";
        let failed = status["failure"].is_string();
        if !wait || finished || failed {
            if options.json {
                print_json(&status);
            } else {
                print_status(&status);
            }
            if wait && failed {
                anyhow::bail!(
                    "onboarding of server {server_id} stopped: {}",
                    text(&status, "/failure")
                );
            }
            return Ok(());
        }
        if !options.json {
            let summary = format!(
                "{} / {} / {}",
                text(&status, "/connection_status"),
                text(&status, "/provision_status"),
                text(&status, "/provisioning_step")
            );
            if summary != last_printed {
                println!("{summary}");
                last_printed = summary;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// `servers resume SERVER` and `servers provision SERVER`: start a job, optionally follow it.
pub async fn start(
    client: &ApiClient,
    options: &ClientOptions,
    server_id: i64,
    resume: bool,
    follow_job: bool,
) -> anyhow::Result<()> {
    let path = if resume {
        format!("/api/v1/servers/{server_id}/provisioning/resume")
    } else {
        format!("/api/v1/servers/{server_id}/provisioning")
    };
    let job = client.call(Method::POST, &path, None).await?;
    let job_id = job["id"].as_i64().unwrap_or(0);
    if follow_job {
        return follow::follow(client, job_id, options.json).await;
    }
    if options.json {
        print_json(&job);
    } else {
        println!(
            "Started job #{job_id}. Watch provisioning with `brokeforge servers provisioning {server_id} --wait`."
        );
    }
    Ok(())
}
