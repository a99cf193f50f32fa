//! `brokeforge-bench`: BrokeForge's benchmarks. Each prints a table of figures with a
//! baseline measured in the same run, and with `--json FILE` appends one JSON line
//! per result. Benchmarks are not tests: they assert nothing about time.

mod api;
mod executor;
mod queue;
mod report;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "brokeforge-bench", about = "BrokeForge benchmarks")]
struct Cli {
    /// Append one JSON line per result to this file.
    #[arg(long, global = true)]
    json: Option<std::path::PathBuf>,
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Subcommand)]
enum Benchmark {
    /// Job queue throughput (no-op jobs) on SQLite and PostgreSQL.
    Queue(queue::QueueOptions),
    /// Plan execution over SSH against local sshd targets, with baselines.
    Executor(executor::ExecutorOptions),
    /// The control plane's HTTP API, dashboard and SSE under load (wrk), on SQLite.
    Api(api::ApiOptions),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut report = report::Report::new(cli.json.clone());
    match cli.benchmark {
        Benchmark::Queue(options) => queue::run(options, &mut report).await?,
        Benchmark::Executor(options) => executor::run(options, &mut report).await?,
        Benchmark::Api(options) => api::run(options, &mut report).await?,
    }
    report.finish()
}
