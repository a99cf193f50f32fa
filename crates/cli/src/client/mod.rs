//! The API client commands: `brokeforge login`, `servers …` and `jobs …`. They talk
//! to a running control plane over its JSON API with a token stored by `login` in
//! the user's config directory (mode 0600), print tables for people or JSON for
//! scripts (`--json`), and follow jobs with a progress bar (`--follow`).

pub mod admin_token;
pub mod config;
pub mod firewall;
pub mod follow;
pub mod jobs;
pub mod login;
pub mod onboarding;
pub mod php;
pub mod servers;
pub mod sites;

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use config::Credentials;

/// Options every client command understands.
#[derive(clap::Args, Clone, Debug)]
pub struct ClientOptions {
    /// The control plane's URL (default: the one `brokeforge login` stored).
    #[arg(long, global = true, env = "BROKEFORGE_URL")]
    pub url: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client bound to one control plane and one token.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ApiClient {
    /// A client with the stored credentials, or the `BROKEFORGE_TOKEN` environment variable.
    pub fn from_options(options: &ClientOptions) -> anyhow::Result<ApiClient> {
        let stored = config::load()?;
        let token = match std::env::var("BROKEFORGE_TOKEN") {
            Ok(token) if !token.trim().is_empty() => token.trim().to_owned(),
            _ => match &stored {
                Some(Credentials { token, .. }) => token.clone(),
                None => bail!("not signed in: run `brokeforge login --url https://your-brokeforge` first"),
            },
        };
        let base = match (&options.url, &stored) {
            (Some(url), _) => url.clone(),
            (None, Some(credentials)) => credentials.url.clone(),
            (None, None) => bail!("no control plane URL: pass --url or run `brokeforge login`"),
        };
        Ok(ApiClient {
            http: http_client()?,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Sends a request and returns the JSON answer, turning the API's error envelope
    /// into a readable error.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        decode(response).await
    }

    /// Sends a request with `query` and raw bytes (or no body) and returns the
    /// answer's content type and bytes; a refusal is an error as with [`ApiClient::call`].
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(String, Vec<u8>)> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token).query(query);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        if !status.is_success() {
            decode(response).await?;
            bail!("the control plane answered {status}");
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = response.bytes().await.context("cannot read the response")?;
        Ok((content_type, bytes.to_vec()))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// Whether `GET path` finds something: false on 404, an error on any other
    /// refusal or when the control plane cannot be reached.
    pub async fn exists(&self, path: &str) -> anyhow::Result<bool> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        decode(response).await.map(|_| true)
    }
}

/// The HTTP client every command uses.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("brokeforge-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("cannot create the HTTP client")
}

/// Reads a response: JSON on success, the error envelope as an error otherwise.
pub async fn decode(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await.context("cannot read the response")?;
    if status.is_success() {
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_str(&text).context("the control plane sent invalid JSON");
    }
    let envelope: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let message = envelope.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
    let mut details = Vec::new();
    if let Some(fields) = envelope.pointer("/error/fields").and_then(Value::as_object) {
        for (field, messages) in fields {
            let joined: Vec<&str> = messages
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            details.push(format!("  {field}: {}", joined.join(" ")));
        }
    }
    let summary = match status {
        StatusCode::UNAUTHORIZED => {
            "the token was refused (revoked or expired?): run `brokeforge login` again".to_owned()
        }
        _ if message.is_empty() => format!("the control plane answered {status}"),
        _ => message.to_owned(),
    };
    if details.is_empty() {
        bail!("{summary}")
    } else {
        bail!("{summary}\n{}", details.join("\n"))
    }
}

/// Prints a value as pretty JSON.
pub fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Prints rows as an aligned table.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            widths[index] = widths[index].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(index, cell)| format!("{cell:<width$}", width = widths[index]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|header| header.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// A field of a JSON object as display text.
pub fn text(value: &Value, pointer: &str) -> String {
    match value.pointer(pointer) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}
