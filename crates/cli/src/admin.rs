//! `brokeforge admin …`: administration from the shell of the control plane's host.

use std::io::BufRead;

use anyhow::Context;
use brokeforge_app::accounts::{self, CreateUser};
use brokeforge_core::Secret;
use clap::Subcommand;

use crate::GlobalOptions;
use crate::startup;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a user. The password is read from standard input with
    /// --password-stdin, or generated and printed once.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create an API token for a user; it is printed once.
    CreateToken(crate::client::admin_token::CreateTokenArgs),
}

pub async fn run(global: &GlobalOptions, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateToken(args) => crate::client::admin_token::run(global, args).await,
        AdminCommand::CreateUser {
            email,
            name,
            admin,
            password_stdin,
        } => {
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("read the password from standard input")?;
                let line = Secret::new(line.trim_end_matches(['\r', '\n']).to_owned());
                (line, false)
            } else {
                (accounts::generate_password(), true)
            };
            let state = startup::open(global).await?;
            let user = accounts::create_user(
                &state.db,
                CreateUser {
                    email: &email,
                    name: &name,
                    password: &password,
                    is_admin: admin,
                },
            )
            .await?;
            println!(
                "Created {} {} (id {}).",
                if user.is_admin { "administrator" } else { "user" },
                user.email,
                user.id
            );
            if generated {
                println!("Password (shown once, store it now): {}", password.expose());
            }
            state.db.close().await;
            Ok(())
        }
    }
}
