//! Who is calling: sign-in with email and password (throttled, with lockout),
//! server-side sessions, bearer API tokens with scopes, first-run setup links and
//! password changes. Every request ends up as a [`Principal`] or is refused.

use std::time::Duration;

use brokeforge_core::Secret;
use brokeforge_db::api_tokens::{self, ApiTokenRecord, NewApiToken};
use brokeforge_db::sessions::{self, NewSession};
use brokeforge_db::users::{self, NewUser, UserRecord};
use brokeforge_db::{Db, throttle};
use chrono::{DateTime, Utc};

use crate::accounts::{self, Email, MIN_PASSWORD_LENGTH};
use crate::audit::{self, Actor};
use crate::crypto::{constant_time_eq, random_hex, sha256};
use crate::error::{AppError, FieldErrors};

/// How long a session lasts without activity.
pub const SESSION_IDLE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a first-run setup link stays valid.
pub const SETUP_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Failed sign-ins for one email address within the window before it is locked.
pub const MAX_FAILURES_PER_EMAIL: i32 = 5;
/// Failed sign-ins from one client address within the window before it is locked.
pub const MAX_FAILURES_PER_ADDRESS: i32 = 20;
/// The window failures are counted in, and how long a lockout lasts.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A permission an API token may carry. Sessions carry all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read anything the user owns.
    Read,
    /// Create, change and delete records.
    Write,
    /// Start, retry and cancel jobs that act on servers.
    Deploy,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Deploy];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Deploy => "deploy",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    read: bool,
    write: bool,
    deploy: bool,
}

impl Scopes {
    pub fn all() -> Scopes {
        Scopes {
            read: true,
            write: true,
            deploy: true,
        }
    }

    pub fn from_list(list: &[Scope]) -> Scopes {
        let mut scopes = Scopes::default();
        for scope in list {
            match scope {
                Scope::Read => scopes.read = true,
                Scope::Write => scopes.write = true,
                Scope::Deploy => scopes.deploy = true,
            }
        }
        scopes
    }

    /// Parses the stored form, `read,write`; unknown names are ignored.
    pub fn parse_stored(text: &str) -> Scopes {
        let list: Vec<Scope> = text.split(',').filter_map(|name| Scope::parse(name.trim())).collect();
        Scopes::from_list(&list)
    }

    pub fn contains(self, scope: Scope) -> bool {
        match scope {
            Scope::Read => self.read,
            Scope::Write => self.write,
            Scope::Deploy => self.deploy,
        }
    }

    pub fn list(self) -> Vec<Scope> {
        Scope::ALL.into_iter().filter(|scope| self.contains(*scope)).collect()
    }

    /// The stored form, `read,write,deploy`.
    pub fn to_stored(self) -> String {
        self.list()
            .iter()
            .map(|scope| scope.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn is_empty(self) -> bool {
        self.list().is_empty()
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A browser session; the CSRF token must accompany every form.
    Session { session_id: i64, csrf_token: String },
    /// A bearer API token.
    Token { token_id: i64 },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub scopes: Scopes,
    pub credential: Credential,
    /// The client address, for the audit log.
    pub ip: Option<String>,
}

impl Principal {
    /// Refuses the call unless the caller holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "this token lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }

    /// Refuses the call unless the caller is an administrator.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.is_admin {
            Ok(())
        } else {
            Err(AppError::Forbidden("only administrators can do this".to_owned()))
        }
    }

    /// The caller as the audit log names them.
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            user_id: Some(self.user_id),
            email: &self.email,
            ip: self.ip.as_deref(),
        }
    }
}

fn now_ms() -> i64 {
    brokeforge_db::clock::now_millis()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A new session: the cookie value (shown to the browser only) and its CSRF token.
pub struct NewSessionToken {
    pub cookie_value: Secret<String>,
    pub csrf_token: String,
}

/// The sign-in form's values.
pub struct SignIn<'a> {
    pub email: &'a str,
    pub password: &'a Secret<String>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// A password hash of a random password, verified against when the email is unknown
/// so that unknown and known addresses take the same time.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| accounts::hash_password(&accounts::generate_password()).expect("hashing works"))
}

fn lockout_message(locked_until_ms: i64, now: i64) -> AppError {
    let seconds = ((locked_until_ms - now).max(0) as u64).div_ceil(1000).max(1);
    let minutes = seconds.div_ceil(60);
    AppError::RateLimited {
        message: format!(
            "Too many failed sign-ins. Sign-in is locked for {minutes} more minute{}; try again later.",
            if minutes == 1 { "" } else { "s" }
        ),
        retry_after_seconds: seconds,
    }
}

async fn check_not_locked(db: &Db, key: &str, now: i64) -> Result<(), AppError> {
    if let Some(state) = throttle::get(db, key).await?
        && let Some(until) = state.locked_until_ms
        && until > now
    {
        return Err(lockout_message(until, now));
    }
    Ok(())
}

async fn count_failure(db: &Db, key: &str, limit: i32, now: i64) -> Result<Option<i64>, AppError> {
    let window = millis(THROTTLE_WINDOW);
    let state = throttle::record_failure(db, key, now, now - window).await?;
    if state.failures >= limit {
        let until = now + window;
        throttle::lock(db, key, until).await?;
        return Ok(Some(until));
    }
    Ok(None)
}

/// Checks an email and password and, when they match, returns the user. Failures are
/// counted per email and per client address; past the limit the key is locked.
pub async fn verify_credentials(
    db: &Db,
    email: &str,
    password: &Secret<String>,
    ip: Option<&str>,
) -> Result<UserRecord, AppError> {
    let now = now_ms();
    let email_key = format!("email:{}", email.trim().to_lowercase());
    let address_key = ip.map(|ip| format!("ip:{ip}"));
    check_not_locked(db, &email_key, now).await?;
    if let Some(key) = &address_key {
        check_not_locked(db, key, now).await?;
    }
    let user = match Email::parse(email) {
        Ok(email) => users::find_by_email(db, email.as_str()).await?,
        Err(_) => None,
    };
    let hash = user
        .as_ref()
        .map(|user| user.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let password = password.clone();
    let matches = tokio::task::spawn_blocking(move || accounts::verify_password(&password, &hash))
        .await
        .map_err(AppError::internal)?;
    match user {
        Some(user) if matches => {
            throttle::clear(db, &email_key).await?;
            Ok(user)
        }
        _ => {
            let mut locked = count_failure(db, &email_key, MAX_FAILURES_PER_EMAIL, now).await?;
            if let Some(key) = &address_key {
                locked = locked.or(count_failure(db, key, MAX_FAILURES_PER_ADDRESS, now).await?);
            }
            audit::record(
                db,
                &Actor {
                    user_id: user.as_ref().map(|user| user.id),
                    // Only a well-formed address is recorded: people sometimes type
                    // their password into the email field, and it must not be logged.
                    email: &Email::parse(email)
                        .map(|email| email.as_str().to_owned())
                        .unwrap_or_else(|_| "(not an email address)".to_owned()),
                    ip,
                },
                "auth.sign_in_failed",
                None,
                None,
                "Failed sign-in",
            )
            .await;
            match locked {
                Some(until) => Err(lockout_message(until, now)),
                None => Err(AppError::Validation(FieldErrors::single(
                    "password",
                    "The email or password is not right.",
                ))),
            }
        }
    }
}

/// Signs in: checks the credentials and opens a session.
pub async fn sign_in(db: &Db, request: SignIn<'_>) -> Result<(UserRecord, NewSessionToken), AppError> {
    let user = verify_credentials(db, request.email, request.password, request.ip).await?;
    let token = open_session(db, user.id, request.ip, request.user_agent).await?;
    audit::record(
        db,
        &Actor {
            user_id: Some(user.id),
            email: &user.email,
            ip: request.ip,
        },
        "auth.signed_in",
        None,
        None,
        "Signed in",
    )
    .await;
    Ok((user, token))
}

/// Opens a session for a user and returns its cookie value.
pub async fn open_session(
    db: &Db,
    user_id: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<NewSessionToken, AppError> {
    let cookie_value = Secret::new(random_hex(32));
    let csrf_token = random_hex(32);
    let now = now_ms();
    // Expired sessions are swept whenever a new one opens, so the table stays small.
    sessions::delete_expired(db, now).await?;
    let user_agent = user_agent.map(|agent| agent.chars().take(200).collect::<String>());
    sessions::insert(
        db,
        &NewSession {
            token_hash: &sha256(cookie_value.expose()),
            user_id,
            csrf_token: &csrf_token,
            ip,
            user_agent: user_agent.as_deref(),
            now_ms: now,
            expires_at_ms: now + millis(SESSION_IDLE_LIFETIME),
        },
    )
    .await?;
    Ok(NewSessionToken {
        cookie_value,
        csrf_token,
    })
}

/// A principal and the moment its credential stops being valid, if it has one.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    /// Milliseconds since the epoch after which the credential is refused.
    pub expires_at_ms: Option<i64>,
}

/// The principal behind a session cookie, or `None` when it is unknown or expired.
pub async fn authenticate_session(
    db: &Db,
    cookie_value: &str,
    ip: Option<&str>,
) -> Result<Option<Principal>, AppError> {
    Ok(check_session(db, cookie_value, ip)
        .await?
        .map(|authenticated| authenticated.principal))
}

/// Like [`authenticate_session`], with the session's expiry.
pub async fn check_session(db: &Db, cookie_value: &str, ip: Option<&str>) -> Result<Option<Authenticated>, AppError> {
    if cookie_value.len() != 64 || !cookie_value.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let now = now_ms();
    let Some(session) = sessions::find_live(db, &sha256(cookie_value), now).await? else {
        return Ok(None);
    };
    // Slide the expiry at most once a minute, so reads do not all become writes.
    let mut expires_at_ms = session.expires_at_ms;
    if now - session.last_seen_at_ms > 60_000 {
        expires_at_ms = now + millis(SESSION_IDLE_LIFETIME);
        sessions::touch(db, session.session_id, now, expires_at_ms).await?;
    }
    Ok(Some(Authenticated {
        principal: Principal {
            user_id: session.user_id,
            email: session.email,
            name: session.name,
            is_admin: session.is_admin,
            scopes: Scopes::all(),
            credential: Credential::Session {
                session_id: session.session_id,
                csrf_token: session.csrf_token,
            },
            ip: ip.map(str::to_owned),
        },
        expires_at_ms: Some(expires_at_ms),
    }))
}

/// Ends the session behind a cookie.
pub async fn sign_out(db: &Db, principal: &Principal, cookie_value: &str) -> Result<(), AppError> {
    sessions::delete_by_hash(db, &sha256(cookie_value)).await?;
    audit::record(db, &principal.actor(), "auth.signed_out", None, None, "Signed out").await;
    Ok(())
}

/// The password-change form's values.
pub struct ChangePassword<'a> {
    pub current_password: &'a Secret<String>,
    pub new_password: &'a Secret<String>,
    pub confirmation: &'a Secret<String>,
}

/// Validates a new password and its confirmation.
pub fn check_new_password(
    new_password: &Secret<String>,
    confirmation: &Secret<String>,
    field: &str,
    errors: &mut FieldErrors,
) {
    if new_password.expose().chars().count() < MIN_PASSWORD_LENGTH {
        errors.add(field, format!("Use at least {MIN_PASSWORD_LENGTH} characters."));
    } else if new_password.expose().chars().count() > 1024 {
        errors.add(field, "Use at most 1024 characters.");
    }
    if new_password.expose() != confirmation.expose() {
        errors.add("password_confirmation", "The two passwords differ.");
    }
}

/// Changes the caller's password after checking the current one; every other session
/// of the user ends.
pub async fn change_password(db: &Db, principal: &Principal, request: ChangePassword<'_>) -> Result<(), AppError> {
    let mut errors = FieldErrors::new();
    check_new_password(request.new_password, request.confirmation, "new_password", &mut errors);
    let user = users::find_by_id(db, principal.user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let current = request.current_password.clone();
    let hash = user.password_hash.clone();
    let matches = tokio::task::spawn_blocking(move || accounts::verify_password(&current, &hash))
        .await
        .map_err(AppError::internal)?;
    if !matches {
        errors.add("current_password", "This is not your current password.");
    }
    errors.into_result()?;
    let new_password = request.new_password.clone();
    let new_hash = tokio::task::spawn_blocking(move || accounts::hash_password(&new_password))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    users::update_password_hash(db, user.id, &new_hash).await?;
    let keep = match &principal.credential {
        Credential::Session { session_id, .. } => Some(*session_id),
        Credential::Token { .. } => None,
    };
    sessions::delete_for_user_except(db, user.id, keep).await?;
    audit::record(
        db,
        &principal.actor(),
        "account.password_changed",
        None,
        None,
        "Changed the password",
    )
    .await;
    Ok(())
}

/// Creates a one-time setup token when no user exists yet and returns it; `None`
/// when the control plane already has users.
pub async fn issue_setup_token(db: &Db) -> Result<Option<Secret<String>>, AppError> {
    if users::count(db).await? > 0 {
        return Ok(None);
    }
    let token = Secret::new(random_hex(32));
    brokeforge_db::setup::replace_token(db, &sha256(token.expose()), now_ms() + millis(SETUP_TOKEN_LIFETIME)).await?;
    Ok(Some(token))
}

/// True when `token` is a valid, unused setup token.
pub async fn setup_token_is_valid(db: &Db, token: &str) -> Result<bool, AppError> {
    if token.len() != 64 {
        return Ok(false);
    }
    Ok(brokeforge_db::setup::token_is_valid(db, &sha256(token), now_ms()).await?)
}

/// The first-run form's values.
pub struct FirstAdmin<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a Secret<String>,
    pub confirmation: &'a Secret<String>,
}

/// Creates the first administrator with a setup token. The token is consumed and
/// the user created together, or neither happens.
pub async fn create_first_admin(
    db: &Db,
    token: &str,
    request: FirstAdmin<'_>,
    ip: Option<&str>,
) -> Result<UserRecord, AppError> {
    let mut errors = FieldErrors::new();
    let email = match Email::parse(request.email) {
        Ok(email) => Some(email),
        Err(error) => {
            errors.add("email", error.to_string().trim_start_matches("email: ").to_owned());
            None
        }
    };
    let name = request.name.trim();
    if name.chars().count() > 100 {
        errors.add("name", "Use at most 100 characters.");
    }
    check_new_password(request.password, request.confirmation, "password", &mut errors);
    errors.into_result()?;
    let email = email.expect("validated above");
    let password = request.password.clone();
    let hash = tokio::task::spawn_blocking(move || accounts::hash_password(&password))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    let user = brokeforge_db::setup::create_first_user(
        db,
        &sha256(token),
        now_ms(),
        &NewUser {
            email: email.as_str(),
            name,
            password_hash: &hash,
            is_admin: true,
        },
    )
    .await?
    .ok_or(AppError::NotFound("setup link"))?;
    audit::record(
        db,
        &Actor {
            user_id: Some(user.id),
            email: &user.email,
            ip,
        },
        "account.created",
        None,
        None,
        "Created the first administrator account",
    )
    .await;
    Ok(user)
}

/// A token as shown once after creation: the only moment its secret exists.
pub struct CreatedToken {
    pub record: ApiTokenRecord,
    pub secret: Secret<String>,
}

/// The token-creation form's values.
pub struct NewToken<'a> {
    pub name: &'a str,
    pub scopes: &'a [String],
    /// Days until expiry; `None` or empty for no expiry.
    pub expires_in_days: Option<&'a str>,
}

/// The public prefix and the full text of a new token: `bf_<prefix>_<secret>`.
fn generate_token() -> (String, Secret<String>) {
    let prefix = random_hex(6);
    let secret = random_hex(32);
    let full = Secret::new(format!("bf_{prefix}_{secret}"));
    (prefix, full)
}

/// Validates and creates an API token for the caller. A token can only be given
/// scopes its creator holds.
pub async fn create_token(db: &Db, principal: &Principal, request: NewToken<'_>) -> Result<CreatedToken, AppError> {
    let mut errors = FieldErrors::new();
    let name = request.name.trim();
    if name.is_empty() {
        errors.add("name", "Give the token a name, such as \"laptop\" or \"ci\".");
    } else if name.chars().count() > 80 || name.chars().any(char::is_control) {
        errors.add("name", "Use at most 80 printable characters.");
    }
    let mut scopes = Vec::new();
    for text in request.scopes {
        match Scope::parse(text.trim()) {
            Some(scope) if principal.scopes.contains(scope) => scopes.push(scope),
            Some(scope) => errors.add(
                "scopes",
                format!("You cannot grant `{}`: you do not hold it.", scope.as_str()),
            ),
            None => errors.add("scopes", format!("Unknown scope {text:?}; use read, write or deploy.")),
        }
    }
    if request.scopes.is_empty() {
        errors.add("scopes", "Choose at least one scope.");
    }
    let expires_at: Option<DateTime<Utc>> = match request.expires_in_days.map(str::trim).filter(|text| !text.is_empty())
    {
        None => None,
        Some(text) => match text.parse::<u32>() {
            Ok(days) if (1..=3650).contains(&days) => {
                Some(brokeforge_db::clock::now() + chrono::Duration::days(i64::from(days)))
            }
            _ => {
                errors.add(
                    "expires_in_days",
                    "Enter a whole number of days from 1 to 3650, or leave it empty.",
                );
                None
            }
        },
    };
    errors.into_result()?;
    let scopes = Scopes::from_list(&scopes);
    let (prefix, secret) = generate_token();
    let record = api_tokens::insert(
        db,
        &NewApiToken {
            user_id: principal.user_id,
            name,
            token_prefix: &prefix,
            token_hash: &sha256(secret.expose()),
            scopes: &scopes.to_stored(),
            expires_at,
        },
    )
    .await?;
    audit::record(
        db,
        &principal.actor(),
        "token.created",
        None,
        Some(&format!("token:{}", record.id)),
        &format!("Created API token \"{name}\" ({})", scopes.to_stored()),
    )
    .await;
    Ok(CreatedToken { record, secret })
}

/// Creates a token for a user from the host's shell (`brokeforge admin create-token`).
pub async fn create_token_for_user(
    db: &Db,
    email: &str,
    name: &str,
    scopes: &[String],
    expires_in_days: Option<&str>,
) -> Result<CreatedToken, AppError> {
    let email =
        Email::parse(email).map_err(|error| AppError::Validation(FieldErrors::single("email", error.to_string())))?;
    let user = users::find_by_email(db, email.as_str())
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let principal = Principal {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        is_admin: user.is_admin,
        scopes: Scopes::all(),
        credential: Credential::Token { token_id: 0 },
        ip: None,
    };
    create_token(
        db,
        &principal,
        NewToken {
            name,
            scopes,
            expires_in_days,
        },
    )
    .await
}

/// The principal behind a bearer token, or `None` when the token is unknown,
/// malformed, revoked or expired.
pub async fn authenticate_token(db: &Db, token: &str, ip: Option<&str>) -> Result<Option<Principal>, AppError> {
    Ok(check_token(db, token, ip)
        .await?
        .map(|authenticated| authenticated.principal))
}

/// Like [`authenticate_token`], with the token's expiry.
pub async fn check_token(db: &Db, token: &str, ip: Option<&str>) -> Result<Option<Authenticated>, AppError> {
    let Some(rest) = token.strip_prefix("bf_") else {
        return Ok(None);
    };
    let Some((prefix, secret)) = rest.split_once('_') else {
        return Ok(None);
    };
    if prefix.len() != 12 || secret.len() != 64 {
        return Ok(None);
    }
    let Some(found) = api_tokens::find_by_prefix(db, prefix).await? else {
        return Ok(None);
    };
    if !constant_time_eq(&sha256(token), &found.token_hash) {
        return Ok(None);
    }
    let now = brokeforge_db::clock::now();
    if found.revoked_at.is_some() || found.expires_at.is_some_and(|expiry| expiry <= now) {
        return Ok(None);
    }
    // Record use at most once a minute, so reads do not all become writes.
    if found
        .last_used_at
        .is_none_or(|used| now - used > chrono::Duration::seconds(60))
    {
        api_tokens::touch_last_used(db, found.id).await?;
    }
    Ok(Some(Authenticated {
        principal: Principal {
            user_id: found.user_id,
            email: found.email,
            name: found.name,
            is_admin: found.is_admin,
            scopes: Scopes::parse_stored(&found.scopes),
            credential: Credential::Token { token_id: found.id },
            ip: ip.map(str::to_owned),
        },
        expires_at_ms: found.expires_at.map(|expiry| expiry.timestamp_millis()),
    }))
}

/// Revokes one of the caller's tokens.
pub async fn revoke_token(db: &Db, principal: &Principal, token_id: i64) -> Result<(), AppError> {
    let token = api_tokens::find_owned(db, principal.user_id, token_id)
        .await?
        .ok_or(AppError::NotFound("token"))?;
    if !api_tokens::revoke(db, principal.user_id, token_id).await? {
        return Err(AppError::Conflict("this token is already revoked".to_owned()));
    }
    audit::record(
        db,
        &principal.actor(),
        "token.revoked",
        None,
        Some(&format!("token:{token_id}")),
        &format!("Revoked API token \"{}\"", token.name),
    )
    .await;
    Ok(())
}

/// The admin form for a new user.
pub struct AdminNewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a Secret<String>,
    pub is_admin: bool,
}

/// An administrator creates a user.
pub async fn admin_create_user(
    db: &Db,
    principal: &Principal,
    request: AdminNewUser<'_>,
) -> Result<UserRecord, AppError> {
    principal.require_admin()?;
    let mut errors = FieldErrors::new();
    if let Err(error) = Email::parse(request.email) {
        errors.add("email", error.to_string().trim_start_matches("email: ").to_owned());
    }
    if request.name.trim().chars().count() > 100 {
        errors.add("name", "Use at most 100 characters.");
    }
    if request.password.expose().chars().count() < MIN_PASSWORD_LENGTH {
        errors.add("password", format!("Use at least {MIN_PASSWORD_LENGTH} characters."));
    }
    errors.into_result()?;
    let password = request.password.clone();
    let email = request.email.to_owned();
    let name = request.name.to_owned();
    let is_admin = request.is_admin;
    let db_for_hash = db.clone();
    let user = accounts::create_user(
        &db_for_hash,
        accounts::CreateUser {
            email: &email,
            name: &name,
            password: &password,
            is_admin,
        },
    )
    .await
    .map_err(|error| match error {
        accounts::AccountError::Db(brokeforge_db::DbError::Conflict(_)) => {
            AppError::Validation(FieldErrors::single("email", "A user with this email already exists."))
        }
        other => AppError::internal(other),
    })?;
    audit::record(
        db,
        &principal.actor(),
        "user.created",
        None,
        Some(&format!("user:{}", user.id)),
        &format!("Created user {}", user.email),
    )
    .await;
    Ok(user)
}

/// An administrator deletes another user and everything that user owns.
pub async fn admin_delete_user(db: &Db, principal: &Principal, user_id: i64) -> Result<(), AppError> {
    principal.require_admin()?;
    if user_id == principal.user_id {
        return Err(AppError::Conflict("you cannot delete your own account".to_owned()));
    }
    let user = users::find_by_id(db, user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    users::delete(db, user_id).await?;
    audit::record(
        db,
        &principal.actor(),
        "user.deleted",
        None,
        Some(&format!("user:{user_id}")),
        &format!("Deleted user {}", user.email),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_their_stored_form() {
        let scopes = Scopes::from_list(&[Scope::Deploy, Scope::Read]);
        assert_eq!(scopes.to_stored(), "read,deploy");
        assert_eq!(Scopes::parse_stored("read,deploy"), scopes);
        assert!(!scopes.contains(Scope::Write));
        assert_eq!(Scopes::parse_stored("bogus"), Scopes::default());
    }

    #[test]
    fn generated_tokens_have_a_prefix_and_a_long_secret() {
        let (prefix, token) = generate_token();
        assert_eq!(prefix.len(), 12);
        assert!(token.expose().starts_with(&format!("bf_{prefix}_")));
        assert_eq!(token.expose().len(), 3 + 12 + 1 + 64);
    }
}
