//! `brokeforge login` and `brokeforge logout`.

use std::io::BufRead;

use anyhow::{Context, bail};
use serde_json::json;

use super::config::{self, Credentials};
use super::{ApiClient, decode, http_client};

/// Sign in to a control plane and store a token for the other commands.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The control plane's URL, such as https://forge.example.com.
    #[arg(long, env = "BROKEFORGE_URL")]
    pub url: String,
    /// Your email address (the password is asked for, or read with --password-stdin).
    #[arg(long)]
    pub email: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Read an existing API token from standard input instead of signing in.
    #[arg(long, conflicts_with_all = ["email", "password_stdin"])]
    pub token_stdin: bool,
    /// The name of the token created for this machine.
    #[arg(long, default_value = "cli")]
    pub token_name: String,
}

/// The first line of standard input, without its line break.
pub(crate) fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads a password from the terminal without echoing it.
fn prompt_password() -> anyhow::Result<String> {
    prompt_secret("Password: ")
}

/// Asks for a secret on the terminal, after `label`, without echoing it.
pub(crate) fn prompt_secret(label: &str) -> anyhow::Result<String> {
    use std::io::Write;
    eprint!("{label}");
    std::io::stderr().flush().ok();
    // SAFETY: tcgetattr/tcsetattr on standard input with a zeroed, then filled, termios.
    let mut original: libc::termios = unsafe { std::mem::zeroed() };
    let is_terminal = unsafe { libc::tcgetattr(0, &mut original) } == 0;
    if is_terminal {
        let mut silent = original;
        silent.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &silent) };
    }
    let line = read_line();
    if is_terminal {
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &original) };
        eprintln!();
    }
    line
}

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let url = args.url.trim().trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("--url must start with https:// (or http:// for a local control plane)");
    }
    let token = if args.token_stdin {
        read_line()?.trim().to_owned()
    } else {
        let email = match args.email {
            Some(email) => email,
            None => {
                eprint!("Email: ");
                read_line()?
            }
        };
        let password = if args.password_stdin {
            read_line()?
        } else {
            prompt_password()?
        };
        let response = http_client()?
            .post(format!("{url}/api/v1/auth/token"))
            .json(&json!({ "email": email, "password": password, "token_name": args.token_name }))
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let created = decode(response).await?;
        created["token"]
            .as_str()
            .context("the control plane returned no token")?
            .to_owned()
    };
    let credentials = Credentials {
        url: url.clone(),
        token,
    };
    let client = ApiClient::from_credentials(&credentials)?;
    let me = client.get("/api/v1/me").await.context("the token does not work")?;
    let path = config::save(&credentials)?;
    println!(
        "Signed in to {url} as {} (scopes: {}). Token stored in {}.",
        me["email"].as_str().unwrap_or("?"),
        me["scopes"]
            .as_array()
            .map(|scopes| scopes.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
        path.display()
    );
    Ok(())
}

pub fn logout() -> anyhow::Result<()> {
    if config::remove()? {
        println!("Signed out: the stored token was removed (revoke it on the Tokens page if it may have leaked).");
    } else {
        println!("Not signed in.");
    }
    Ok(())
}

impl ApiClient {
    fn from_credentials(credentials: &Credentials) -> anyhow::Result<ApiClient> {
        Ok(ApiClient {
            http: http_client()?,
            base: credentials.url.clone(),
            token: credentials.token.clone(),
        })
    }
}
