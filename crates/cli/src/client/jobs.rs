//! `brokeforge jobs list|show|retry|cancel`.

use reqwest::Method;

use super::{ApiClient, ClientOptions, follow, print_json, print_table, text};

#[derive(clap::Subcommand, Debug)]
pub enum JobsCommand {
    /// List your jobs, newest first.
    List {
        /// Only jobs about this server.
        #[arg(long)]
        server: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show a job and its milestones.
    Show {
        job_id: i64,
        /// Follow the job with a progress bar until it ends; exit non-zero if it fails.
        #[arg(long)]
        follow: bool,
    },
    /// Queue a failed or cancelled job again.
    Retry {
        job_id: i64,
        #[arg(long)]
        follow: bool,
    },
    /// Cancel a queued or running job.
    Cancel { job_id: i64 },
}

pub async fn run(options: &ClientOptions, command: JobsCommand) -> anyhow::Result<()> {
    let client = ApiClient::from_options(options)?;
    match command {
        JobsCommand::List { server, limit } => {
            let mut path = format!("/api/v1/jobs?limit={limit}");
            if let Some(server) = server {
                path.push_str(&format!("&server_id={server}"));
            }
            let page = client.get(&path).await?;
            if options.json {
                print_json(&page);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|job| {
                    vec![
                        text(job, "/id"),
                        text(job, "/kind"),
                        text(job, "/server_name"),
                        text(job, "/state"),
                        text(job, "/created_at"),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No jobs yet.");
            } else {
                print_table(&["ID", "KIND", "SERVER", "STATE", "CREATED"], &rows);
            }
        }
        JobsCommand::Show { job_id, follow: true } => return follow::follow(&client, job_id, options.json).await,
        JobsCommand::Show { job_id, follow: false } => {
            let job = client.get(&format!("/api/v1/jobs/{job_id}")).await?;
            if options.json {
                print_json(&job);
            } else {
                follow::print_summary(&job);
            }
        }
        JobsCommand::Retry { job_id, follow } => {
            let job = client
                .call(Method::POST, &format!("/api/v1/jobs/{job_id}/retry"), None)
                .await?;
            if follow {
                return follow::follow(&client, job_id, options.json).await;
            }
            if options.json {
                print_json(&job)
            } else {
                println!("Job #{job_id} was queued again.")
            }
        }
        JobsCommand::Cancel { job_id } => {
            let job = client
                .call(Method::POST, &format!("/api/v1/jobs/{job_id}/cancel"), None)
                .await?;
            if options.json {
                print_json(&job)
            } else {
                println!("Cancellation of job #{job_id} requested.")
            }
        }
    }
    Ok(())
}
