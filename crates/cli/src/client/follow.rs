//! `--follow`: watches a job until it ends, with a progress bar showing the current
//! milestone. A failed job prints its failed step (masked command, exit code and the
//! tail of stderr) and makes the command exit non-zero.

use std::time::Duration;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::{ApiClient, print_json, text};

/// How often the job is read.
const POLL_INTERVAL: Duration = Duration::from_millis(300);

/// The failed step of a job, if any.
fn failed_event(job: &Value) -> Option<&Value> {
    job["events"]
        .as_array()?
        .iter()
        .rev()
        .find(|event| event["status"] == "failed")
}

/// Prints a job and its milestones.
pub fn print_summary(job: &Value) {
    println!(
        "Job #{} {} on {}: {}",
        text(job, "/id"),
        text(job, "/kind"),
        text(job, "/server_name"),
        text(job, "/state")
    );
    let events = job["events"].as_array().map(Vec::as_slice).unwrap_or_default();
    let job_state = text(job, "/state");
    for (index, event) in events.iter().enumerate() {
        let later = &events[index + 1..];
        let status = text(event, "/status");
        // A milestone's own outcome row (a failure) supersedes the row of reaching it.
        if status == "running" && later.iter().any(|other| other["current_step"] == event["current_step"]) {
            continue;
        }
        println!(
            "  [{}/{}] {} ({})",
            text(event, "/current_step"),
            text(event, "/total_steps"),
            text(event, "/milestone"),
            milestone_status(&status, later.is_empty(), &job_state)
        );
    }
    if let Some(event) = failed_event(job) {
        print_failure(event);
    }
}

/// What a milestone's event says of it. An event is recorded as `running` when its
/// milestone is reached; once a later milestone is reached it is done, and the last
/// one ends as the job does.
fn milestone_status(status: &str, is_last: bool, job_state: &str) -> String {
    match (status, is_last) {
        ("running", false) => "done".to_owned(),
        ("running", true) if job_state != "running" && job_state != "queued" => job_state.to_owned(),
        _ => status.to_owned(),
    }
}

fn print_failure(event: &Value) {
    eprintln!(
        "Step {} of {} failed: {}",
        text(event, "/current_step"),
        text(event, "/total_steps"),
        text(event, "/milestone")
    );
    eprintln!("  command:   {}", text(event, "/command"));
    eprintln!("  exit code: {}", text(event, "/exit_code"));
    let stderr = event["stderr_tail"].as_str().unwrap_or("");
    if !stderr.is_empty() {
        eprintln!("  stderr (last lines):");
        for line in stderr.lines() {
            eprintln!("    {line}");
        }
    }
}

/// Follows job `job_id` until it is final.
pub async fn follow(client: &ApiClient, job_id: i64, json: bool) -> anyhow::Result<()> {
    follow_with_log(client, job_id, json, None).await
}

/// Waits for job `job_id` to be final and prints nothing on standard output (the
/// progress bar is on standard error), for commands that print their own JSON.
pub async fn wait_quietly(client: &ApiClient, job_id: i64) -> anyhow::Result<()> {
    follow_job(client, job_id, Report::Nothing, None).await
}

/// What following a job prints on standard output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Report {
    /// The log as it grows, then a line saying how the job ended.
    Text,
    /// The final job as JSON.
    Json,
    /// Nothing.
    Nothing,
}

/// The part of `output` not printed yet, given the end of what was printed.
/// `output` is the end of a log that may have dropped its beginning since.
fn unseen<'a>(printed: &str, output: &'a str) -> &'a str {
    if printed.is_empty() {
        return output;
    }
    if let Some(rest) = output.strip_prefix(printed) {
        return rest;
    }
    // The log was cut at the front: find where the printed end reappears.
    let anchor_start = printed.len().saturating_sub(256);
    let anchor_start = (anchor_start..printed.len())
        .find(|index| printed.is_char_boundary(*index))
        .unwrap_or(printed.len());
    let anchor = &printed[anchor_start..];
    match output.rfind(anchor) {
        Some(index) => &output[index + anchor.len()..],
        None => output,
    }
}

/// Follows job `job_id` until it is final, printing the log that `log_path`'s
/// `output` field holds as it grows (a deployment's, for example).
pub async fn follow_with_log(
    client: &ApiClient,
    job_id: i64,
    json: bool,
    log_path: Option<&str>,
) -> anyhow::Result<()> {
    let report = if json { Report::Json } else { Report::Text };
    follow_job(client, job_id, report, log_path).await
}

async fn follow_job(client: &ApiClient, job_id: i64, report: Report, log_path: Option<&str>) -> anyhow::Result<()> {
    let mut printed = String::new();
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("job #{job_id} queued"));
    let job = loop {
        let job = client.get(&format!("/api/v1/jobs/{job_id}")).await?;
        if let Some(event) = job["events"].as_array().and_then(|events| events.last()) {
            bar.set_length(event["total_steps"].as_u64().unwrap_or(1).max(1));
            let step = event["current_step"].as_u64().unwrap_or(0);
            let done = if event["status"] == "success" {
                step
            } else {
                step.saturating_sub(1)
            };
            bar.set_position(done);
            bar.set_message(text(event, "/milestone"));
        }
        let state = job["state"].as_str().unwrap_or("");
        let finished = matches!(state, "succeeded" | "failed" | "cancelled");
        if let Some(path) = log_path
            && report == Report::Text
        {
            // The log is read after the job's state, so a final state has its whole log.
            let output = client.get(path).await?["output"].as_str().unwrap_or("").to_owned();
            let new = unseen(&printed, &output);
            if !new.is_empty() {
                bar.suspend(|| {
                    use std::io::Write;
                    let mut stdout = std::io::stdout().lock();
                    let _ = stdout.write_all(new.as_bytes());
                    let _ = stdout.flush();
                });
                printed = output;
            }
        }
        if finished {
            break job;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    bar.finish_and_clear();
    if report == Report::Json {
        print_json(&job);
    }
    match job["state"].as_str().unwrap_or("") {
        "succeeded" => {
            if report == Report::Text {
                println!("Job #{job_id} succeeded.");
            }
            Ok(())
        }
        state => {
            if report == Report::Text
                && let Some(event) = failed_event(&job)
            {
                print_failure(event);
            }
            let reason = job["last_error"].as_str().unwrap_or(state);
            bail!("job #{job_id} {state}: {reason}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{milestone_status, unseen};

    #[test]
    fn reached_milestones_read_as_done_and_the_last_as_the_job_ended() {
        assert_eq!(milestone_status("running", false, "running"), "done");
        assert_eq!(milestone_status("running", true, "running"), "running");
        assert_eq!(milestone_status("running", false, "succeeded"), "done");
        assert_eq!(milestone_status("running", true, "succeeded"), "succeeded");
        assert_eq!(milestone_status("running", true, "cancelled"), "cancelled");
        assert_eq!(milestone_status("failed", true, "failed"), "failed");
    }

    #[test]
    fn only_new_log_text_is_printed() {
        assert_eq!(unseen("", "a\nb\n"), "a\nb\n");
        assert_eq!(unseen("a\n", "a\nb\n"), "b\n");
        assert_eq!(unseen("a\nb\n", "a\nb\n"), "");
        // The log lost its beginning: the rest after the printed end.
        let printed = format!("{}abc\n", "x".repeat(300));
        let output = format!("{}abc\nnew\n", "x".repeat(260));
        assert_eq!(unseen(&printed, &output), "new\n");
        // Nothing in common: everything.
        assert_eq!(unseen("old\n", "fresh\n"), "fresh\n");
    }
}
