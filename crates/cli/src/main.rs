//! The `brokeforge` binary: runs the control plane (`serve`), extra workers
//! (`worker`), migrations (`migrate`) and administration (`admin`), and talks to a
//! running control plane as an API client (`login`, `servers`, `jobs`).

mod admin;
mod client;
mod logging;
mod serve;
mod startup;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "brokeforge",
    version,
    about = "BrokeForge: manage your own Linux servers over SSH"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    #[command(subcommand)]
    command: Command,
}

/// Options every command understands.
#[derive(Args, Clone, Debug)]
pub struct GlobalOptions {
    /// Where BrokeForge keeps its SQLite database and master key.
    #[arg(
        long,
        global = true,
        env = "BROKEFORGE_DATA_DIR",
        default_value = "./brokeforge-data"
    )]
    pub data_dir: PathBuf,
    /// Use PostgreSQL at this URL instead of the embedded SQLite database.
    #[arg(long, global = true, env = "BROKEFORGE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Log line format.
    #[arg(long, global = true, env = "BROKEFORGE_LOG_FORMAT", value_enum, default_value_t = logging::LogFormat::Pretty)]
    pub log_format: logging::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: the web UI, the API and in-process workers.
    Serve(serve::ServeOptions),
    /// Run workers only (extra nodes sharing one PostgreSQL).
    Worker(serve::WorkerOptions),
    /// Apply database migrations and exit.
    Migrate,
    /// Administration tasks.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Sign in to a control plane and store a token for the commands below.
    Login(client::login::LoginArgs),
    /// Forget the stored token.
    Logout,
    /// Manage servers through the API.
    Servers {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(subcommand)]
        command: client::servers::ServersCommand,
    },
    /// Manage sites, deployments and site commands through the API.
    Sites {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(subcommand)]
        command: client::sites::SitesCommand,
    },
    /// Inspect and follow jobs through the API.
    Jobs {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(subcommand)]
        command: client::jobs::JobsCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("brokeforge: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(options) => serve::serve(&cli.global, options).await,
            Command::Worker(options) => serve::worker(&cli.global, options).await,
            Command::Migrate => startup::migrate_only(&cli.global).await,
            Command::Admin(command) => admin::run(&cli.global, command).await,
            Command::Login(args) => client::login::login(args).await,
            Command::Logout => client::login::logout(),
            Command::Servers { client, command } => client::servers::run(&client, command).await,
            Command::Sites { client, command } => client::sites::run(&client, command).await,
            Command::Jobs { client, command } => client::jobs::run(&client, command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("brokeforge: {error:#}");
            ExitCode::FAILURE
        }
    }
}
