//! `brokeforge admin create-token`: creates an API token for a user from the
//! control plane's host, printing it once.

use brokeforge_app::auth;

use crate::GlobalOptions;
use crate::startup;

/// Create an API token for a user and print it once.
#[derive(clap::Args, Debug)]
pub struct CreateTokenArgs {
    /// The user's email address.
    #[arg(long)]
    pub email: String,
    /// A name to recognise the token by.
    #[arg(long, default_value = "admin-created")]
    pub name: String,
    /// Scopes, comma-separated: read, write, deploy.
    #[arg(long, default_value = "read,write,deploy", value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Days until the token expires (default: never).
    #[arg(long)]
    pub expires_in_days: Option<u32>,
}

pub async fn run(global: &GlobalOptions, args: CreateTokenArgs) -> anyhow::Result<()> {
    let state = startup::open(global).await?;
    let expires = args.expires_in_days.map(|days| days.to_string());
    let created =
        auth::create_token_for_user(&state.db, &args.email, &args.name, &args.scopes, expires.as_deref()).await;
    state.db.close().await;
    let created = created.map_err(|error| match error {
        brokeforge_app::AppError::Validation(fields) => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|(field, messages)| format!("{field}: {}", messages.join(" ")))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        brokeforge_app::AppError::NotFound(_) => anyhow::anyhow!("no user with email {}", args.email),
        other => anyhow::anyhow!("{other}"),
    })?;
    println!(
        "Created token \"{}\" for {} (scopes {}).",
        created.record.name, args.email, created.record.scopes
    );
    println!("Token (shown once, store it now): {}", created.secret.expose());
    Ok(())
}
