//! Sites on a server: creating one (validated into the site package's own types),
//! listing and showing them, changing their deploy settings, making one the default
//! site, turning their deploy webhook on and off, and deleting them.
//!
//! Creating a site stores it as `installing` and enqueues one `SiteInstall` job
//! (directories, PHP-FPM pool, nginx server block checked with `nginx -t`); deleting
//! marks it `removing` and enqueues one `SiteRemove` job. Each job carries a
//! `FollowUp::Site`, and [`after_job`] moves the row on: `active` after an
//! installation, deleted with its history after a removal, `failed` with the job's
//! message when it failed for good. A WordPress site takes its database settings at
//! creation (the password sealed at rest, never answered back) and, once installed,
//! one more job puts WordPress into its first release ([`crate::wordpress`]) before it
//! becomes `active`.
//!
//! Making a site the server's default site ([`set_default`]) is one
//! `DefaultSiteUpdate` job; the `is_default` flag follows when it succeeded
//! ([`after_default_job`]).
//!
//! Every use case checks the token scope and reaches the site through its server's
//! owner, so another user's site answers exactly like an unknown one.

use brokeforge_core::{Domain, GitBranch, PhpVersion, Secret};
use brokeforge_db::package_records;
use brokeforge_db::servers::ServerRecord;
use brokeforge_db::site_wordpress::{self, NewWordPress};
use brokeforge_db::sites::{self as site_table, DeploySettings, NewSite, SiteRecord};
use brokeforge_db::{Db, Sealer};
use brokeforge_packages::Package;
use brokeforge_packages::nginx::Nginx;
use brokeforge_packages::php::{Php, PhpCliDefault};
use brokeforge_packages::site::default_site::DefaultSiteInput;
use brokeforge_packages::site::git::KnownHostEntry;
use brokeforge_packages::site::install::{SiteInputError, SiteInstallInput};
use brokeforge_packages::site::wp_config::{DatabasePassword, DownloadUrl, WordPressDatabase};
use brokeforge_packages::site::{DeployScript, GitRepositoryUrl, KeepReleases, SiteType, WebDirectory};
use brokeforge_queue::{JobId, JobState, Queue};
use serde::{Deserialize, Deserializer};

use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldErrors};
use crate::follow_up::{Finished, FollowUp};
use crate::operations::{self, EventTarget, OperationEnvironment, PackageOperationPayload};

/// The site's install job is queued or running.
pub const STATUS_INSTALLING: &str = "installing";
/// The site is in place on its server.
pub const STATUS_ACTIVE: &str = "active";
/// The site's removal job is queued or running; the records go when it succeeds.
pub const STATUS_REMOVING: &str = "removing";
/// The site's last install or removal failed; `error_log` says why.
pub const STATUS_FAILED: &str = "failed";

/// The most aliases one site can have.
pub const MAX_ALIASES: usize = 20;

/// Capitalizes a package's message and ends it with a full stop.
pub(crate) fn sentence(text: &str) -> String {
    let mut characters = text.chars();
    let mut out: String = match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn trimmed(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|text| !text.is_empty())
}

/// A new site as typed into a form or sent as JSON, before validation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SiteInput {
    /// The site's main domain, such as `example.com`.
    pub domain: Option<String>,
    /// More domains: a JSON list, or one text with commas or spaces between them.
    pub aliases: Option<serde_json::Value>,
    /// Whether `www.<domain>` is served too.
    pub www: Option<bool>,
    /// `static`, `php` (the default), `laravel` or `wordpress`.
    pub site_type: Option<String>,
    /// The PHP version the site runs (PHP types only); the server's command-line
    /// default when left out.
    pub php_version: Option<String>,
    /// The directory nginx serves, relative to the release; the type's default when
    /// left out.
    pub web_directory: Option<String>,
    /// The Git repository deployments fetch from.
    pub git_repository: Option<String>,
    /// The branch deployments build (`main` when a repository is given without one).
    pub git_branch: Option<String>,
    /// Host keys of a self-hosted Git server (`known_hosts` lines): a JSON list, or
    /// one text with a line each.
    pub git_host_keys: Option<serde_json::Value>,
    /// WordPress only: the name of the database WordPress uses.
    pub database_name: Option<String>,
    /// WordPress only: the database user WordPress logs in as.
    pub database_user: Option<String>,
    /// WordPress only: that user's password. Secret: sealed at rest, never shown again.
    #[serde(default, deserialize_with = "secret_text")]
    pub database_password: Option<Secret<String>>,
    /// WordPress only: where the database listens (`localhost` when left out).
    pub database_host: Option<String>,
    /// WordPress only: the prefix of WordPress's tables (`wp_` when left out).
    pub table_prefix: Option<String>,
    /// WordPress only: where WordPress is downloaded from (wordpress.org's latest
    /// release when left out); its SHA-1 checksum is read from the same URL with
    /// `.sha1` appended.
    pub wordpress_download_url: Option<String>,
}

/// Deserializes optional text straight into a [`Secret`].
fn secret_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret<String>>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(Secret::new))
}

/// A WordPress site's settings: its database (the password apart) and where
/// WordPress is downloaded from.
#[derive(Debug, Clone)]
pub struct WordPressSettings {
    pub database: WordPressDatabase,
    pub password: DatabasePassword,
    pub download_url: DownloadUrl,
}

/// A validated new site: what installing it needs, its Git settings and, for
/// WordPress, its database.
#[derive(Debug, Clone)]
pub struct ValidSite {
    pub install: SiteInstallInput,
    pub git: Option<(GitRepositoryUrl, GitBranch)>,
    pub git_host_keys: Vec<KnownHostEntry>,
    pub wordpress: Option<WordPressSettings>,
}

impl ValidSite {
    /// Every name the site serves: its domain, its `www` variant and its aliases.
    pub fn server_names(&self) -> Vec<String> {
        self.install
            .server_names()
            .iter()
            .map(|name| name.as_str().to_owned())
            .collect()
    }
}

/// Every name an existing site serves.
pub fn site_names(site: &SiteRecord) -> Vec<String> {
    match crate::site_operations::install_input(site) {
        Ok(input) => input
            .server_names()
            .iter()
            .map(|name| name.as_str().to_owned())
            .collect(),
        Err(_) => std::iter::once(site.domain.clone())
            .chain(site.aliases.0.iter().cloned())
            .collect(),
    }
}

fn alias_texts(value: &Option<serde_json::Value>) -> Result<Vec<String>, String> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::String(text)) => Ok(text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                serde_json::Value::String(text) => Ok(text.trim().to_owned()),
                _ => Err("List the aliases as domain names.".to_owned()),
            })
            .filter(|item| !matches!(item, Ok(text) if text.is_empty()))
            .collect(),
        Some(_) => Err("List the aliases as domain names.".to_owned()),
    }
}

/// The form field a site package refusal belongs to.
fn field_of(error: &SiteInputError) -> &'static str {
    match error {
        SiteInputError::Php(_) => "php_version",
        SiteInputError::AliasIsDomain(_)
        | SiteInputError::DuplicateAlias(_)
        | SiteInputError::TooManyAliases { .. } => "aliases",
        SiteInputError::NoWwwVariant { .. } => "www",
        SiteInputError::Socket(_) => "domain",
    }
}

impl SiteInput {
    /// Validates every field into the site package's types, collecting every
    /// problem. `cli_default` is the server's command-line PHP version, used when a
    /// PHP site names none.
    pub fn validate(&self, cli_default: Option<PhpVersion>) -> Result<ValidSite, FieldErrors> {
        let mut errors = FieldErrors::new();
        let domain = match trimmed(&self.domain) {
            None => {
                errors.add("domain", "Enter the site's domain, such as example.com.");
                None
            }
            Some(text) => text
                .parse::<Domain>()
                .map_err(|error| errors.add("domain", sentence(&error.to_string())))
                .ok(),
        };
        let aliases = match alias_texts(&self.aliases) {
            Err(message) => {
                errors.add("aliases", message);
                None
            }
            Ok(texts) => {
                let mut aliases = Vec::new();
                for text in texts {
                    match text.parse::<Domain>() {
                        Ok(alias) => aliases.push(alias),
                        Err(error) => errors.add("aliases", format!("{text}: {}", sentence(&error.to_string()))),
                    }
                }
                Some(aliases)
            }
        };
        let site_type = match trimmed(&self.site_type) {
            None => Some(SiteType::Php),
            Some(text) => text
                .to_ascii_lowercase()
                .parse::<SiteType>()
                .map_err(|_| errors.add("site_type", "Choose static, php, laravel or wordpress."))
                .ok(),
        };
        let php_version = match (trimmed(&self.php_version), site_type) {
            (None, Some(site_type)) if site_type.uses_php() => match cli_default {
                Some(version) => Some(Some(version)),
                None => {
                    errors.add("php_version", "Choose the PHP version the site runs.");
                    None
                }
            },
            (None, _) => Some(None),
            (Some(text), _) => text
                .parse::<PhpVersion>()
                .map(Some)
                .map_err(|error| errors.add("php_version", sentence(&error.to_string())))
                .ok(),
        };
        let web_directory = match trimmed(&self.web_directory) {
            None => Some(None),
            Some(text) => text
                .parse::<WebDirectory>()
                .map(Some)
                .map_err(|error| errors.add("web_directory", sentence(&error.to_string())))
                .ok(),
        };
        let git = match validate_git(&self.git_repository, &self.git_branch) {
            Ok(git) => Some(git),
            Err(git_errors) => {
                for (field, messages) in git_errors.iter() {
                    for message in messages {
                        errors.add(field, message.clone());
                    }
                }
                None
            }
        };
        let git_host_keys = validate_host_keys(&self.git_host_keys)
            .map_err(|message| errors.add("git_host_keys", message))
            .ok();
        let install = match (domain, site_type, php_version, aliases) {
            (Some(domain), Some(site_type), Some(php_version), Some(aliases)) => {
                let built = SiteInstallInput::new(domain, site_type, php_version)
                    .and_then(|input| input.with_aliases(aliases))
                    .and_then(|input| input.with_www(self.www.unwrap_or(false)));
                match built {
                    Ok(input) => Some(input),
                    Err(error) => {
                        errors.add(field_of(&error), sentence(&error.to_string()));
                        None
                    }
                }
            }
            _ => None,
        };
        let wordpress = self.validate_wordpress(site_type, &mut errors);
        let (Some(install), Some(web_directory), Some(git), Some(git_host_keys), Some(wordpress)) =
            (install, web_directory, git, git_host_keys, wordpress)
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let install = match web_directory {
            Some(web_directory) => install.with_web_directory(web_directory),
            None => install,
        };
        Ok(ValidSite {
            install,
            git,
            git_host_keys,
            wordpress,
        })
    }

    /// The WordPress settings: required for WordPress sites, refused for the others.
    /// `None` when a field is invalid (its problem is in `errors`).
    fn validate_wordpress(
        &self,
        site_type: Option<SiteType>,
        errors: &mut FieldErrors,
    ) -> Option<Option<WordPressSettings>> {
        let password = self
            .database_password
            .as_ref()
            .filter(|password| !password.expose().is_empty());
        let Some(site_type) = site_type else {
            // The type itself is refused already.
            return Some(None);
        };
        if site_type != SiteType::WordPress {
            let given = [
                ("database_name", trimmed(&self.database_name).is_some()),
                ("database_user", trimmed(&self.database_user).is_some()),
                ("database_password", password.is_some()),
                ("database_host", trimmed(&self.database_host).is_some()),
                ("table_prefix", trimmed(&self.table_prefix).is_some()),
                (
                    "wordpress_download_url",
                    trimmed(&self.wordpress_download_url).is_some(),
                ),
            ];
            let mut refused = false;
            for (field, _) in given.iter().filter(|(_, given)| *given) {
                errors.add(field, "Only WordPress sites take database and download settings.");
                refused = true;
            }
            return (!refused).then_some(None);
        }
        fn parsed<T: std::str::FromStr>(
            errors: &mut FieldErrors,
            field: &'static str,
            text: Option<&str>,
            missing: &str,
        ) -> Option<T>
        where
            T::Err: std::fmt::Display,
        {
            match text {
                None => {
                    errors.add(field, missing);
                    None
                }
                Some(text) => text
                    .parse::<T>()
                    .map_err(|error| errors.add(field, sentence(&error.to_string())))
                    .ok(),
            }
        }
        let name = parsed(
            errors,
            "database_name",
            trimmed(&self.database_name),
            "Enter the name of the database WordPress uses.",
        );
        let user = parsed(
            errors,
            "database_user",
            trimmed(&self.database_user),
            "Enter the database user WordPress logs in as.",
        );
        let host = parsed(
            errors,
            "database_host",
            Some(trimmed(&self.database_host).unwrap_or("localhost")),
            "",
        );
        let table_prefix = parsed(
            errors,
            "table_prefix",
            Some(trimmed(&self.table_prefix).unwrap_or("wp_")),
            "",
        );
        let download_url = parsed(
            errors,
            "wordpress_download_url",
            Some(trimmed(&self.wordpress_download_url).unwrap_or(DownloadUrl::WORDPRESS_ORG)),
            "",
        );
        let password = match password {
            None => {
                errors.add("database_password", "Enter the database user's password.");
                None
            }
            Some(password) => DatabasePassword::new(password.clone())
                .map_err(|error| errors.add("database_password", sentence(&error.to_string())))
                .ok(),
        };
        let (Some(name), Some(user), Some(host), Some(table_prefix), Some(download_url), Some(password)) =
            (name, user, host, table_prefix, download_url, password)
        else {
            return None;
        };
        Some(Some(WordPressSettings {
            database: WordPressDatabase {
                name,
                user,
                host,
                table_prefix,
            },
            password,
            download_url,
        }))
    }
}

/// How many host key lines a site may pin for its own Git server.
pub const MAX_GIT_HOST_KEYS: usize = 20;

/// Validates host keys for a self-hosted Git server: a JSON list of `known_hosts`
/// lines, or one text with a line each (blank lines and `#` comments are skipped).
pub fn validate_host_keys(value: &Option<serde_json::Value>) -> Result<Vec<KnownHostEntry>, String> {
    let lines: Vec<String> = match value {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(text)) => text.lines().map(str::to_owned).collect(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "Give the host keys as text lines.".to_owned())
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("Give the host keys as text lines.".to_owned()),
    };
    let mut entries: Vec<KnownHostEntry> = Vec::new();
    for (number, line) in lines.iter().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = line
            .parse::<KnownHostEntry>()
            .map_err(|error| format!("Line {}: {}", number + 1, sentence(&error.to_string())))?;
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    if entries.len() > MAX_GIT_HOST_KEYS {
        return Err(format!("Pin at most {MAX_GIT_HOST_KEYS} host keys."));
    }
    Ok(entries)
}

/// Host keys as stored: one `known_hosts` line each.
pub fn host_keys_text(entries: &[KnownHostEntry]) -> String {
    entries.iter().map(|entry| format!("{entry}\n")).collect()
}

/// Validates a repository and a branch: both empty means no repository; a
/// repository without a branch builds `main`; a branch without a repository is an
/// error.
pub fn validate_git(
    repository: &Option<String>,
    branch: &Option<String>,
) -> Result<Option<(GitRepositoryUrl, GitBranch)>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let repository_text = trimmed(repository);
    let branch_text = trimmed(branch);
    let repository = match repository_text {
        None => None,
        Some(text) => text
            .parse::<GitRepositoryUrl>()
            .map_err(|error| errors.add("git_repository", sentence(&error.to_string())))
            .ok(),
    };
    let branch = match branch_text {
        None => Some("main".parse::<GitBranch>().expect("main is a branch")),
        Some(text) => text
            .parse::<GitBranch>()
            .map_err(|error| errors.add("git_branch", sentence(&error.to_string())))
            .ok(),
    };
    if repository_text.is_none() && branch_text.is_some() {
        errors.add("git_repository", "Enter the repository the branch belongs to.");
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(repository.zip(branch))
}

/// One of the caller's sites; unknown ids and other users' sites are both "not found".
pub async fn owned_site(db: &Db, principal: &Principal, site_id: i64) -> Result<SiteRecord, AppError> {
    site_table::find_owned(db, principal.user_id, site_id)
        .await?
        .ok_or(AppError::NotFound("site"))
}

/// The site and its server, both the caller's.
pub async fn owned_site_and_server(
    db: &Db,
    principal: &Principal,
    site_id: i64,
) -> Result<(SiteRecord, ServerRecord), AppError> {
    let site = owned_site(db, principal, site_id).await?;
    let server = brokeforge_db::servers::find_owned(db, principal.user_id, site.server_id)
        .await?
        .ok_or(AppError::NotFound("site"))?;
    Ok((site, server))
}

async fn owned_server(db: &Db, principal: &Principal, server_id: i64) -> Result<ServerRecord, AppError> {
    brokeforge_db::servers::find_owned(db, principal.user_id, server_id)
        .await?
        .ok_or(AppError::NotFound("server"))
}

/// The sites of one of the caller's servers, by domain.
pub async fn list(db: &Db, principal: &Principal, server_id: i64) -> Result<Vec<SiteRecord>, AppError> {
    principal.require(Scope::Read)?;
    owned_server(db, principal, server_id).await?;
    Ok(site_table::list_for_server(db, server_id).await?)
}

/// One of the caller's sites.
pub async fn get(db: &Db, principal: &Principal, site_id: i64) -> Result<SiteRecord, AppError> {
    principal.require(Scope::Read)?;
    owned_site(db, principal, site_id).await
}

/// What the server offers a new site: the PHP versions installed and the default.
#[derive(Debug, Clone, Default)]
pub struct ServerOffer {
    pub nginx_installed: bool,
    pub php_versions: Vec<PhpVersion>,
    pub cli_default: Option<PhpVersion>,
}

/// What one of the caller's servers offers a new site.
pub async fn server_offer(db: &Db, principal: &Principal, server_id: i64) -> Result<ServerOffer, AppError> {
    principal.require(Scope::Read)?;
    owned_server(db, principal, server_id).await?;
    offer_of(db, server_id).await
}

async fn offer_of(db: &Db, server_id: i64) -> Result<ServerOffer, AppError> {
    let records = package_records::server_packages(db, server_id).await?;
    let active = |record: &&brokeforge_db::package_records::ServerPackageRecord| record.status == "active";
    let nginx_installed = records
        .iter()
        .filter(active)
        .any(|record| record.package_type == Nginx::TYPE.as_str() && record.package_name == Nginx::NAME.as_str());
    let mut php_versions: Vec<PhpVersion> = records
        .iter()
        .filter(active)
        .filter(|record| record.package_type == Php::TYPE.as_str() && record.package_name == Php::NAME.as_str())
        .filter_map(|record| record.instance.parse::<PhpVersion>().ok())
        .collect();
    php_versions.sort();
    let cli_default = records
        .iter()
        .find(|record| {
            record.package_type == PhpCliDefault::TYPE.as_str() && record.package_name == PhpCliDefault::NAME.as_str()
        })
        .and_then(|record| record.package_version.as_deref())
        .and_then(|version| version.parse::<PhpVersion>().ok())
        .filter(|version| php_versions.contains(version));
    Ok(ServerOffer {
        nginx_installed,
        php_versions,
        cli_default,
    })
}

/// A site and the job that installs or removes it.
#[derive(Debug, Clone)]
pub struct SiteJob {
    pub site: SiteRecord,
    pub job_id: JobId,
}

/// Creates a site on one of the caller's servers: stores it as `installing` and
/// enqueues the one job that installs it. Nothing is stored when any field is
/// invalid, the domain (or an alias) is already served by another site of the
/// server, or its PHP version is not installed there.
pub async fn create(
    queue: &Queue,
    sealer: &Sealer,
    principal: &Principal,
    server_id: i64,
    input: &SiteInput,
) -> Result<SiteJob, AppError> {
    principal.require(Scope::Deploy)?;
    let db = queue.db();
    let server = owned_server(db, principal, server_id).await?;
    let offer = offer_of(db, server_id).await?;
    let valid = input.validate(offer.cli_default).map_err(AppError::Validation)?;
    let mut errors = FieldErrors::new();
    if let Some(version) = valid.install.php_version()
        && !offer.php_versions.contains(&version)
    {
        errors.add(
            "php_version",
            format!("PHP {version} is not installed on this server; install it on the server's PHP page first."),
        );
    }
    let existing = site_table::list_for_server(db, server_id).await?;
    let new_names = valid.server_names();
    for site in &existing {
        let taken = site_names(site);
        for (index, name) in new_names.iter().enumerate() {
            if taken.contains(name) {
                let field = match index {
                    0 => "domain",
                    1 if valid.install.www() => "www",
                    _ => "aliases",
                };
                errors.add(
                    field,
                    format!("{name} is already served by the site {} on this server.", site.domain),
                );
            }
        }
    }
    errors.into_result()?;
    if !offer.nginx_installed {
        return Err(AppError::Conflict(
            "nginx is not installed on this server yet; finish provisioning first.".to_owned(),
        ));
    }
    let install = &valid.install;
    let layout = install.layout();
    let aliases: Vec<String> = install
        .aliases()
        .iter()
        .map(|alias| alias.as_str().to_owned())
        .collect();
    let (repository, branch) = match &valid.git {
        Some((repository, branch)) => (Some(repository.as_str()), Some(branch.as_str())),
        None => (None, None),
    };
    let git_host_keys = host_keys_text(&valid.git_host_keys);
    let record = site_table::insert(
        db,
        &NewSite {
            server_id,
            domain: install.domain().as_str(),
            site_type: install.site_type().as_str(),
            document_root: layout.web_root(install.web_directory()).as_str(),
            php_version: install.php_version().map(PhpVersion::as_str),
            aliases: &aliases,
            www: install.www(),
            web_directory: install.web_directory().as_str(),
            git_repository: repository,
            git_branch: branch,
            git_host_keys: &git_host_keys,
            deploy_script: install.site_type().default_deploy_script().as_str(),
            keep_releases: KeepReleases::default().get() as i32,
            status: STATUS_INSTALLING,
        },
    )
    .await
    .map_err(|error| match error {
        brokeforge_db::DbError::Conflict(message) => {
            AppError::Validation(FieldErrors::single("domain", sentence(&message)))
        }
        other => other.into(),
    })?;
    if let Some(wordpress) = &valid.wordpress
        && let Err(error) = store_wordpress(db, sealer, record.id, wordpress).await
    {
        let _ = site_table::delete(db, record.id).await;
        return Err(error);
    }
    let record = site_table::find(db, record.id).await?.unwrap_or(record);
    let job_id = match start_install(queue, &record).await {
        Ok(job_id) => job_id,
        Err(error) => {
            // Nothing will install the row: take it back.
            let _ = site_table::delete(db, record.id).await;
            return Err(error);
        }
    };
    crate::audit::record(
        db,
        &principal.actor(),
        "site.created",
        Some(server_id),
        Some(&format!("site:{}", record.id)),
        &format!(
            "Created the {} site {} on \"{}\" (job #{job_id})",
            install.site_type(),
            record.domain,
            server.name
        ),
    )
    .await;
    let site = site_table::find(db, record.id).await?.unwrap_or(record);
    Ok(SiteJob { site, job_id })
}

/// Stores a WordPress site's settings, its database password sealed.
async fn store_wordpress(
    db: &Db,
    sealer: &Sealer,
    site_id: i64,
    wordpress: &WordPressSettings,
) -> Result<(), AppError> {
    let sealed = sealer
        .seal_str(
            wordpress.password.secret().expose(),
            &site_wordpress::password_aad(site_id),
        )
        .map_err(AppError::internal)?;
    site_wordpress::insert(
        db,
        &NewWordPress {
            site_id,
            database_name: wordpress.database.name.as_str(),
            database_user: wordpress.database.user.as_str(),
            database_host: wordpress.database.host.as_str(),
            table_prefix: wordpress.database.table_prefix.as_str(),
            database_password_sealed: &sealed,
            download_url: wordpress.download_url.as_str(),
        },
    )
    .await?;
    Ok(())
}

/// Enqueues the job that installs (or brings up to date) `site` on its server.
async fn start_install(queue: &Queue, site: &SiteRecord) -> Result<JobId, AppError> {
    let operation = crate::site_operations::install(site)?;
    let payload = PackageOperationPayload {
        events: EventTarget::Site {
            server_id: site.server_id,
            site_id: site.id,
        },
        operation,
        follow_up: Some(FollowUp::Site {
            site_id: site.id,
            removing: false,
        }),
    };
    site_table::start_job(queue.db(), site.id, STATUS_INSTALLING).await?;
    let job_id = operations::enqueue(queue, &payload).await?;
    site_table::set_job(queue.db(), site.id, job_id.0).await?;
    Ok(job_id)
}

/// Whether job `job_id` is still waiting or running.
pub(crate) async fn job_is_active(queue: &Queue, job_id: Option<i64>) -> Result<bool, AppError> {
    let Some(job_id) = job_id else {
        return Ok(false);
    };
    Ok(queue
        .get(JobId(job_id))
        .await?
        .is_some_and(|job| matches!(job.state, JobState::Queued | JobState::Running)))
}

/// Installs one of the caller's sites again (after a failure, or to bring its
/// configuration up to date): one job.
pub async fn reinstall(queue: &Queue, principal: &Principal, site_id: i64) -> Result<SiteJob, AppError> {
    principal.require(Scope::Deploy)?;
    let db = queue.db();
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    if job_is_active(queue, site.job_id).await? {
        return Err(AppError::Conflict(format!(
            "This site's job #{} is still under way.",
            site.job_id.unwrap_or_default()
        )));
    }
    if site.status == STATUS_REMOVING {
        return Err(AppError::Conflict("This site is being removed.".to_owned()));
    }
    let job_id = start_install(queue, &site).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "site.reinstall_started",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!(
            "Started installing the site {} on \"{}\" again (job #{job_id})",
            site.domain, server.name
        ),
    )
    .await;
    let site = site_table::find(db, site_id).await?.unwrap_or(site);
    Ok(SiteJob { site, job_id })
}

/// Deploy settings as typed into a form or sent as JSON; fields left out keep their
/// values.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeploySettingsInput {
    pub git_repository: Option<String>,
    pub git_branch: Option<String>,
    pub deploy_script: Option<String>,
    pub keep_releases: Option<serde_json::Value>,
    /// Host keys of a self-hosted Git server, as for a new site.
    pub git_host_keys: Option<serde_json::Value>,
}

/// Changes the deploy settings of one of the caller's sites: its repository and
/// branch, its deploy script and how many releases it keeps.
pub async fn update_deploy_settings(
    db: &Db,
    principal: &Principal,
    site_id: i64,
    input: &DeploySettingsInput,
) -> Result<SiteRecord, AppError> {
    principal.require(Scope::Write)?;
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    let mut errors = FieldErrors::new();
    let repository = input.git_repository.clone().or_else(|| site.git_repository.clone());
    let branch = input.git_branch.clone().or_else(|| site.git_branch.clone());
    let git = match validate_git(&repository, &branch) {
        Ok(git) => git,
        Err(git_errors) => {
            for (field, messages) in git_errors.iter() {
                for message in messages {
                    errors.add(field, message.clone());
                }
            }
            None
        }
    };
    let script_text = input
        .deploy_script
        .clone()
        .map(|text| text.replace("\r\n", "\n"))
        .unwrap_or_else(|| site.deploy_script.clone());
    let script = script_text
        .parse::<DeployScript>()
        .map_err(|error| errors.add("deploy_script", sentence(&error.to_string())))
        .ok();
    let keep_text = match &input.keep_releases {
        None | Some(serde_json::Value::Null) => site.keep_releases.to_string(),
        Some(serde_json::Value::String(text)) => text.trim().to_owned(),
        Some(other) => other.to_string(),
    };
    let keep = keep_text
        .parse::<u32>()
        .ok()
        .and_then(|count| KeepReleases::new(count).ok())
        .ok_or_else(|| {
            errors.add(
                "keep_releases",
                format!("Keep from 1 to {} releases.", KeepReleases::MAX),
            )
        })
        .ok();
    let host_keys = match &input.git_host_keys {
        None => Some(site.git_host_keys.clone()),
        given => validate_host_keys(given)
            .map(|entries| host_keys_text(&entries))
            .map_err(|message| errors.add("git_host_keys", message))
            .ok(),
    };
    errors.into_result()?;
    let (Some(script), Some(keep), Some(host_keys)) = (script, keep, host_keys) else {
        return Err(AppError::internal("validated deploy settings are missing"));
    };
    let (repository, branch) = match &git {
        Some((repository, branch)) => (Some(repository.as_str()), Some(branch.as_str())),
        None => (None, None),
    };
    site_table::update_deploy_settings(
        db,
        site_id,
        &DeploySettings {
            git_repository: repository,
            git_branch: branch,
            git_host_keys: &host_keys,
            deploy_script: script.as_str(),
            keep_releases: keep.get() as i32,
        },
    )
    .await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "site.deploy_settings_changed",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!(
            "Changed the deploy settings of the site {} on \"{}\"",
            site.domain, server.name
        ),
    )
    .await;
    site_table::find(db, site_id).await?.ok_or(AppError::NotFound("site"))
}

/// Deletes one of the caller's sites: marks it `removing` and enqueues the one job
/// that removes its server block, pool, releases, shared files and logs; the records
/// go once it succeeded.
pub async fn delete(queue: &Queue, principal: &Principal, site_id: i64) -> Result<SiteJob, AppError> {
    principal.require(Scope::Deploy)?;
    let db = queue.db();
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    if site.status == STATUS_REMOVING && job_is_active(queue, site.job_id).await? {
        return Err(AppError::Conflict(format!(
            "This site is already being removed (job #{}).",
            site.job_id.unwrap_or_default()
        )));
    }
    let operation = crate::site_operations::remove(&site)?;
    let payload = PackageOperationPayload {
        events: EventTarget::Site {
            server_id: server.id,
            site_id,
        },
        operation,
        follow_up: Some(FollowUp::Site {
            site_id,
            removing: true,
        }),
    };
    site_table::start_job(db, site_id, STATUS_REMOVING).await?;
    let job_id = match operations::enqueue(queue, &payload).await {
        Ok(job_id) => job_id,
        Err(error) => {
            let _ = site_table::set_status(db, site_id, &site.status, site.error_log.as_deref()).await;
            return Err(error.into());
        }
    };
    site_table::set_job(db, site_id, job_id.0).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "site.removal_started",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!(
            "Started removing the site {} from \"{}\" (job #{job_id})",
            site.domain, server.name
        ),
    )
    .await;
    let site = site_table::find(db, site_id).await?.unwrap_or(site);
    Ok(SiteJob { site, job_id })
}

/// Updates site `site_id` after its install or removal job `job_id` finished:
/// `active` after an installation, deleted with its history after a removal,
/// `failed` with the message when the job failed for good; nothing while the queue
/// will try again. A job the site was since handed away from changes nothing.
pub async fn after_job(
    environment: &OperationEnvironment,
    job_id: i64,
    site_id: i64,
    removing: bool,
    finished: Finished<'_>,
) -> Result<(), brokeforge_db::DbError> {
    let db = &environment.db;
    let Some(site) = site_table::find(db, site_id).await? else {
        return Ok(());
    };
    if site.job_id.is_some_and(|current| current != job_id) {
        return Ok(());
    }
    match finished {
        Finished::WillRetry(_) => {}
        Finished::Succeeded(_) if removing => {
            site_table::delete(db, site_id).await?;
            if let Some(server) = brokeforge_db::servers::find(db, site.server_id).await? {
                crate::audit::record(
                    db,
                    &crate::audit::Actor {
                        user_id: Some(server.user_id),
                        email: "brokeforge",
                        ip: None,
                    },
                    "site.deleted",
                    Some(server.id),
                    Some(&format!("site:{site_id}")),
                    &format!(
                        "Removed the site {} from \"{}\" and deleted it",
                        site.domain, server.name
                    ),
                )
                .await;
            }
        }
        Finished::Succeeded(_) if site.site_type == SiteType::WordPress.as_str() => {
            // WordPress goes into the site's first release before it counts as active.
            if let Err(error) = crate::wordpress::start(&environment.queue, &site).await {
                let message = format!("the WordPress job could not be queued: {error}");
                site_table::set_status(db, site_id, STATUS_FAILED, Some(&message)).await?;
            }
        }
        Finished::Succeeded(_) => {
            site_table::set_status(db, site_id, STATUS_ACTIVE, None).await?;
        }
        Finished::Failed(error) => {
            site_table::set_status(db, site_id, STATUS_FAILED, Some(&error.to_string())).await?;
        }
    }
    Ok(())
}

/// Makes one of the caller's sites the server's default site (`default`), or makes
/// no site the default (`!default`): one `DefaultSiteUpdate` job, which rewrites the
/// site's server block (and the previous default's) and turns nginx's catch-all site
/// off or on, all checked by `nginx -t` and put back when the check fails. The flag
/// changes when the job succeeded.
pub async fn set_default(
    queue: &Queue,
    principal: &Principal,
    site_id: i64,
    default: bool,
) -> Result<SiteJob, AppError> {
    principal.require(Scope::Deploy)?;
    let db = queue.db();
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    if site.status != STATUS_ACTIVE {
        return Err(AppError::Conflict(
            match site.status.as_str() {
                STATUS_INSTALLING => "This site is still being installed; change the default site once that finished.",
                STATUS_REMOVING => "This site is being removed.",
                _ => "This site's installation failed; install it again first.",
            }
            .to_owned(),
        ));
    }
    let input = if default {
        let previous = site_table::list_for_server(db, server.id)
            .await?
            .into_iter()
            .find(|other| other.is_default && other.id != site.id);
        let previous = previous
            .as_ref()
            .map(crate::site_operations::install_input)
            .transpose()?;
        DefaultSiteInput::new(Some(crate::site_operations::install_input(&site)?), previous)
    } else {
        DefaultSiteInput::new(None, Some(crate::site_operations::install_input(&site)?))
    }
    .map_err(AppError::internal)?;
    let payload = PackageOperationPayload {
        events: EventTarget::Site {
            server_id: server.id,
            site_id,
        },
        operation: crate::operations::PackageOperation::DefaultSiteUpdate(input),
        follow_up: Some(FollowUp::DefaultSite { site_id, default }),
    };
    let job_id = operations::enqueue(queue, &payload).await?;
    let (action, message) = if default {
        (
            "site.default_set",
            format!(
                "Started making the site {} the default site of \"{}\" (job #{job_id})",
                site.domain, server.name
            ),
        )
    } else {
        (
            "site.default_unset",
            format!(
                "Started making no site the default site of \"{}\" in place of {} (job #{job_id})",
                server.name, site.domain
            ),
        )
    };
    crate::audit::record(
        db,
        &principal.actor(),
        action,
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &message,
    )
    .await;
    Ok(SiteJob { site, job_id })
}

/// Records the default site once its job succeeded: `site_id` becomes the server's
/// only default site (`default`), or the server has none (`!default`, when `site_id`
/// still is the default). A failed job changed nothing on the server, nor here.
pub async fn after_default_job(
    environment: &OperationEnvironment,
    server_id: i64,
    site_id: i64,
    default: bool,
    finished: Finished<'_>,
) -> Result<(), brokeforge_db::DbError> {
    let db = &environment.db;
    if !matches!(finished, Finished::Succeeded(_)) {
        return Ok(());
    }
    let Some(site) = site_table::find(db, site_id).await? else {
        return Ok(());
    };
    if default {
        site_table::set_default(db, server_id, Some(site_id)).await?;
    } else if site.is_default {
        site_table::set_default(db, server_id, None).await?;
    }
    Ok(())
}

/// The webhook secret, shown once when the webhook is turned on.
pub struct WebhookSecret {
    pub secret: Secret<String>,
}

/// Turns on the deploy webhook of one of the caller's sites with a new random secret
/// (256 bits), sealed at rest; the secret is returned this once. Turning it on again
/// replaces the secret, so a leaked one can be revoked.
pub async fn enable_webhook(
    db: &Db,
    sealer: &Sealer,
    principal: &Principal,
    site_id: i64,
) -> Result<WebhookSecret, AppError> {
    principal.require(Scope::Write)?;
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    if site.git_repository.is_none() {
        return Err(AppError::Conflict(
            "Set the site's Git repository first: the webhook deploys from it.".to_owned(),
        ));
    }
    let secret = Secret::new(crate::crypto::random_hex(32));
    let sealed = sealer
        .seal_str(secret.expose(), &site_table::webhook_secret_aad(site_id))
        .map_err(AppError::internal)?;
    site_table::set_webhook_secret(db, site_id, Some(&sealed)).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "site.webhook_enabled",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!("Turned on the deploy webhook of the site {} (new secret)", site.domain),
    )
    .await;
    Ok(WebhookSecret { secret })
}

/// Turns off the deploy webhook of one of the caller's sites and forgets its secret.
pub async fn disable_webhook(db: &Db, principal: &Principal, site_id: i64) -> Result<(), AppError> {
    principal.require(Scope::Write)?;
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    site_table::set_webhook_secret(db, site_id, None).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "site.webhook_disabled",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!("Turned off the deploy webhook of the site {}", site.domain),
    )
    .await;
    Ok(())
}

/// Registers the job kinds of sites: deployments (and rollbacks), site commands and
/// WordPress's installation.
pub fn register(registry: &mut brokeforge_queue::Registry, environment: &OperationEnvironment) {
    crate::deployments::register(registry, environment);
    crate::site_commands::register(registry, environment);
    crate::wordpress::register(registry, environment);
}
