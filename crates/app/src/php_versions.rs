//! PHP after provisioning: the versions installed on a server with the command-line
//! default and the extensions of each, and the use cases that change them. Each
//! change enqueues exactly one `package.operation` job and returns its id:
//! installing a version (`PhpInstall`), removing one (`PhpRemove`, refused while a
//! site runs on it or while it is the command-line default), setting the default
//! (`PhpCliDefaultInstall`), and installing or removing an extension
//! (`PhpExtensionInstall`, `PhpExtensionRemove`).
//!
//! What is installed is what the package records say: one `php` record per version
//! (its configuration lists the extensions), and one `php-cli-default` record whose
//! version is the default. Extension jobs carry a `FollowUp::PhpExtension`, and
//! [`after_extension_job`] updates the version's list once the job succeeded. Jobs
//! still queued or running are read from the queue, so a second request for the
//! same change is refused while the first is pending.

use brokeforge_core::PhpVersion;
use brokeforge_db::Db;
use brokeforge_db::package_records::{self, ServerPackageRecord};
use brokeforge_db::php_versions as php_table;
use brokeforge_db::servers::{self as server_table, ServerRecord};
use brokeforge_packages::Package;
use brokeforge_packages::php::extension::{PhpExtension, PhpExtensionInput, PhpExtensionRefusal};
use brokeforge_packages::php::{Php, PhpCliDefault, PhpFpmSettings, PhpInstallInput, PhpVersionInput};
use brokeforge_queue::{JobFilter, JobId, JobState, Queue};
use serde::Serialize;

use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldErrors};
use crate::follow_up::{Finished, FollowUp};
use crate::jobs::server_subject;
use crate::operations::{
    self, EventTarget, OperationEnvironment, PACKAGE_OPERATION_KIND, PackageOperation, PackageOperationPayload,
};

/// One installed PHP version.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledPhp {
    pub version: PhpVersion,
    /// The record's status (`active` once installed).
    pub status: String,
    /// Whether the `php` command runs this version.
    pub is_cli_default: bool,
    /// The extensions installed for this version, by name.
    pub extensions: Vec<String>,
    /// Where its packages come from: `distro`, `sury` or `ondrej-ppa`.
    pub source: Option<String>,
    /// The domains of the sites that run on this version.
    pub sites: Vec<String>,
}

/// What a pending PHP job will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhpChange {
    Install,
    Remove,
    CliDefault,
    ExtensionInstall,
    ExtensionRemove,
}

/// A PHP job that is queued or running.
#[derive(Debug, Clone, Serialize)]
pub struct PendingPhpJob {
    pub job_id: i64,
    /// `queued` or `running`.
    pub state: String,
    pub change: PhpChange,
    pub version: PhpVersion,
    pub extension: Option<PhpExtension>,
    /// What the job does, in words.
    pub summary: String,
}

/// PHP on one server.
#[derive(Debug, Clone, Serialize)]
pub struct PhpOverview {
    /// Installed versions, oldest first.
    pub versions: Vec<InstalledPhp>,
    /// The version the `php` command runs, if BrokeForge set one.
    pub cli_default: Option<PhpVersion>,
    /// PHP jobs still queued or running, oldest first.
    pub pending: Vec<PendingPhpJob>,
}

impl PhpOverview {
    /// The installed version `version`, if any.
    pub fn installed(&self, version: PhpVersion) -> Option<&InstalledPhp> {
        self.versions.iter().find(|installed| installed.version == version)
    }

    /// The pending job doing `change` to `version` (and `extension`), if any.
    fn pending(
        &self,
        change: PhpChange,
        version: PhpVersion,
        extension: Option<PhpExtension>,
    ) -> Option<&PendingPhpJob> {
        self.pending
            .iter()
            .find(|job| job.change == change && job.version == version && job.extension == extension)
    }

    /// Versions that are neither installed nor being installed.
    pub fn installable(&self) -> Vec<PhpVersion> {
        PhpVersion::ALL
            .iter()
            .copied()
            .filter(|version| {
                self.installed(*version).is_none() && self.pending(PhpChange::Install, *version, None).is_none()
            })
            .collect()
    }
}

impl PhpChange {
    /// The stable name, as the API shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            PhpChange::Install => "install",
            PhpChange::Remove => "remove",
            PhpChange::CliDefault => "cli_default",
            PhpChange::ExtensionInstall => "extension_install",
            PhpChange::ExtensionRemove => "extension_remove",
        }
    }
}

/// Every extension BrokeForge can install, in the PHP package's order.
pub fn known_extensions() -> &'static [PhpExtension] {
    PhpExtension::ALL
}

fn change_of(operation: &PackageOperation) -> Option<(PhpChange, PhpVersion, Option<PhpExtension>)> {
    Some(match operation {
        PackageOperation::PhpInstall(input) => (PhpChange::Install, input.version, None),
        PackageOperation::PhpRemove(input) => (PhpChange::Remove, input.version, None),
        PackageOperation::PhpCliDefaultInstall(input) => (PhpChange::CliDefault, input.version, None),
        PackageOperation::PhpExtensionInstall(input) => {
            (PhpChange::ExtensionInstall, input.version, Some(input.extension))
        }
        PackageOperation::PhpExtensionRemove(input) => {
            (PhpChange::ExtensionRemove, input.version, Some(input.extension))
        }
        _ => return None,
    })
}

fn summary_of(change: PhpChange, version: PhpVersion, extension: Option<PhpExtension>) -> String {
    let extension = extension.map(PhpExtension::as_str).unwrap_or("");
    match change {
        PhpChange::Install => format!("Install PHP {version}"),
        PhpChange::Remove => format!("Remove PHP {version}"),
        PhpChange::CliDefault => format!("Make PHP {version} the command-line default"),
        PhpChange::ExtensionInstall => format!("Install {extension} for PHP {version}"),
        PhpChange::ExtensionRemove => format!("Remove {extension} from PHP {version}"),
    }
}

/// The PHP jobs of a server that are queued or running, oldest first.
async fn pending_jobs(queue: &Queue, server_id: i64) -> Result<Vec<PendingPhpJob>, AppError> {
    let mut pending = Vec::new();
    for state in [JobState::Queued, JobState::Running] {
        let jobs = queue
            .list(&JobFilter {
                state: Some(state),
                subject: Some(server_subject(server_id)),
                kind: Some(PACKAGE_OPERATION_KIND.to_owned()),
                before: None,
                limit: 1000,
            })
            .await?;
        for job in jobs {
            let Ok(payload) = serde_json::from_value::<PackageOperationPayload>(job.payload) else {
                continue;
            };
            if let Some((change, version, extension)) = change_of(&payload.operation) {
                pending.push(PendingPhpJob {
                    job_id: job.id.0,
                    state: state.as_str().to_owned(),
                    change,
                    version,
                    extension,
                    summary: summary_of(change, version, extension),
                });
            }
        }
    }
    pending.sort_by_key(|job| job.job_id);
    Ok(pending)
}

fn extensions_of(record: &ServerPackageRecord) -> Vec<String> {
    record
        .configuration
        .0
        .get("extensions")
        .and_then(|value| value.as_array())
        .into_iter()
        .flatten()
        .filter_map(|value| value.as_str().map(str::to_owned))
        .collect()
}

/// The overview of a server the caller owns (checked before).
async fn overview_of(queue: &Queue, server_id: i64) -> Result<PhpOverview, AppError> {
    let db = queue.db();
    let records = package_records::server_packages(db, server_id).await?;
    let cli_default = records
        .iter()
        .find(|record| {
            record.package_type == PhpCliDefault::TYPE.as_str() && record.package_name == PhpCliDefault::NAME.as_str()
        })
        .and_then(|record| record.package_version.as_deref())
        .and_then(|version| version.parse::<PhpVersion>().ok());
    let mut versions = Vec::new();
    for record in records
        .iter()
        .filter(|record| record.package_type == Php::TYPE.as_str() && record.package_name == Php::NAME.as_str())
    {
        let Ok(version) = record.instance.parse::<PhpVersion>() else {
            continue;
        };
        let sites = php_table::sites_using(db, server_id, version.as_str())
            .await?
            .into_iter()
            .map(|site| site.domain)
            .collect();
        versions.push(InstalledPhp {
            version,
            status: record.status.clone(),
            is_cli_default: cli_default == Some(version),
            extensions: extensions_of(record),
            source: record
                .configuration
                .0
                .get("source")
                .and_then(|value| value.as_str())
                .map(str::to_owned),
            sites,
        });
    }
    versions.sort_by_key(|installed| installed.version);
    Ok(PhpOverview {
        versions,
        cli_default,
        pending: pending_jobs(queue, server_id).await?,
    })
}

async fn owned_server(db: &Db, principal: &Principal, server_id: i64) -> Result<ServerRecord, AppError> {
    server_table::find_owned(db, principal.user_id, server_id)
        .await?
        .ok_or(AppError::NotFound("server"))
}

fn capitalized(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// Parses a PHP version typed by a user, as a field error on `version`.
pub fn parse_version(text: &str) -> Result<PhpVersion, FieldErrors> {
    text.trim()
        .parse::<PhpVersion>()
        .map_err(|error| FieldErrors::single("version", format!("{}.", capitalized(&error.to_string()))))
}

/// Parses an extension name with the PHP package's own list, as a field error on
/// `extension`.
pub fn parse_extension(text: &str) -> Result<PhpExtension, FieldErrors> {
    text.trim()
        .parse::<PhpExtension>()
        .map_err(|error| FieldErrors::single("extension", format!("{}.", capitalized(&error.to_string()))))
}

/// PHP on one of the caller's servers.
pub async fn overview(queue: &Queue, principal: &Principal, server_id: i64) -> Result<PhpOverview, AppError> {
    principal.require(Scope::Read)?;
    owned_server(queue.db(), principal, server_id).await?;
    overview_of(queue, server_id).await
}

/// A job started on a server, and the overview it was checked against.
struct Checked {
    server: ServerRecord,
    overview: PhpOverview,
}

async fn check(queue: &Queue, principal: &Principal, server_id: i64) -> Result<Checked, AppError> {
    principal.require(Scope::Deploy)?;
    let server = owned_server(queue.db(), principal, server_id).await?;
    let overview = overview_of(queue, server_id).await?;
    Ok(Checked { server, overview })
}

fn refuse_pending(job: Option<&PendingPhpJob>) -> Result<(), AppError> {
    match job {
        Some(job) => Err(AppError::Conflict(format!(
            "{} is already under way (job #{}).",
            job.summary, job.job_id
        ))),
        None => Ok(()),
    }
}

fn require_installed(overview: &PhpOverview, version: PhpVersion) -> Result<&InstalledPhp, AppError> {
    overview.installed(version).ok_or_else(|| {
        AppError::Conflict(format!(
            "PHP {version} is not installed on this server; install it first."
        ))
    })
}

async fn start(
    queue: &Queue,
    principal: &Principal,
    server: &ServerRecord,
    operation: PackageOperation,
    follow_up: Option<FollowUp>,
    action: &str,
    summary: &str,
) -> Result<JobId, AppError> {
    let payload = PackageOperationPayload {
        events: EventTarget::Server { server_id: server.id },
        operation,
        follow_up,
    };
    let job_id = operations::enqueue(queue, &payload).await?;
    crate::audit::record(
        queue.db(),
        &principal.actor(),
        action,
        Some(server.id),
        Some(&format!("job:{job_id}")),
        &format!("{summary} on \"{}\" (job #{job_id})", server.name),
    )
    .await;
    Ok(job_id)
}

/// Installs another PHP version on one of the caller's servers, with FPM, the
/// common extensions and the default FPM settings.
pub async fn install(queue: &Queue, principal: &Principal, server_id: i64, version: &str) -> Result<JobId, AppError> {
    let Checked { server, overview } = check(queue, principal, server_id).await?;
    let version = parse_version(version).map_err(AppError::Validation)?;
    if overview.installed(version).is_some() {
        return Err(AppError::Conflict(format!(
            "PHP {version} is already installed on this server."
        )));
    }
    refuse_pending(overview.pending(PhpChange::Install, version, None))?;
    let input = PhpInstallInput {
        version,
        fpm: PhpFpmSettings::default(),
    };
    start(
        queue,
        principal,
        &server,
        PackageOperation::PhpInstall(input),
        None,
        "php.install_started",
        &summary_of(PhpChange::Install, version, None),
    )
    .await
}

/// Removes a PHP version from one of the caller's servers. Refused while a site runs
/// on it, and while it is the command-line default.
pub async fn remove(queue: &Queue, principal: &Principal, server_id: i64, version: &str) -> Result<JobId, AppError> {
    let Checked { server, overview } = check(queue, principal, server_id).await?;
    let version = parse_version(version).map_err(AppError::Validation)?;
    let installed = require_installed(&overview, version)?;
    refuse_pending(overview.pending(PhpChange::Remove, version, None))?;
    if !installed.sites.is_empty() {
        let (noun, pronoun) = if installed.sites.len() == 1 {
            ("site", "it")
        } else {
            ("sites", "them")
        };
        return Err(AppError::Conflict(format!(
            "PHP {version} is used by the {noun} {}; switch {pronoun} to another PHP version or delete {pronoun} first.",
            installed.sites.join(", ")
        )));
    }
    if installed.is_cli_default {
        return Err(AppError::Conflict(format!(
            "PHP {version} is the command-line default; make another installed version the default first."
        )));
    }
    if let Some(job) = overview.pending(PhpChange::CliDefault, version, None) {
        return Err(AppError::Conflict(format!(
            "PHP {version} is becoming the command-line default (job #{}); make another version the default first.",
            job.job_id
        )));
    }
    start(
        queue,
        principal,
        &server,
        PackageOperation::PhpRemove(PhpVersionInput { version }),
        None,
        "php.remove_started",
        &summary_of(PhpChange::Remove, version, None),
    )
    .await
}

/// Makes an installed PHP version the one the `php` command runs.
pub async fn set_cli_default(
    queue: &Queue,
    principal: &Principal,
    server_id: i64,
    version: &str,
) -> Result<JobId, AppError> {
    let Checked { server, overview } = check(queue, principal, server_id).await?;
    let version = parse_version(version).map_err(AppError::Validation)?;
    let installed = require_installed(&overview, version)?;
    if installed.is_cli_default {
        return Err(AppError::Conflict(format!(
            "PHP {version} is already the command-line default."
        )));
    }
    refuse_pending(overview.pending(PhpChange::Remove, version, None))?;
    refuse_pending(overview.pending(PhpChange::CliDefault, version, None))?;
    start(
        queue,
        principal,
        &server,
        PackageOperation::PhpCliDefaultInstall(PhpVersionInput { version }),
        None,
        "php.cli_default_started",
        &summary_of(PhpChange::CliDefault, version, None),
    )
    .await
}

/// Installs one extension for an installed PHP version.
pub async fn install_extension(
    queue: &Queue,
    principal: &Principal,
    server_id: i64,
    version: &str,
    extension: &str,
) -> Result<JobId, AppError> {
    let Checked { server, overview } = check(queue, principal, server_id).await?;
    let version = parse_version(version).map_err(AppError::Validation)?;
    let extension = parse_extension(extension).map_err(AppError::Validation)?;
    let installed = require_installed(&overview, version)?;
    if extension.is_built_in(version) {
        return Err(AppError::Validation(FieldErrors::single(
            "extension",
            format!("{extension} is part of PHP {version} itself; there is nothing to install."),
        )));
    }
    if installed.extensions.iter().any(|name| name == extension.as_str()) {
        return Err(AppError::Conflict(format!(
            "{extension} is already installed for PHP {version}."
        )));
    }
    refuse_pending(overview.pending(PhpChange::Remove, version, None))?;
    refuse_pending(overview.pending(PhpChange::ExtensionInstall, version, Some(extension)))?;
    start(
        queue,
        principal,
        &server,
        PackageOperation::PhpExtensionInstall(PhpExtensionInput { version, extension }),
        Some(FollowUp::PhpExtension {
            version,
            extension,
            installed: true,
        }),
        "php.extension_install_started",
        &summary_of(PhpChange::ExtensionInstall, version, Some(extension)),
    )
    .await
}

/// Turns off and purges one extension of an installed PHP version.
pub async fn remove_extension(
    queue: &Queue,
    principal: &Principal,
    server_id: i64,
    version: &str,
    extension: &str,
) -> Result<JobId, AppError> {
    let Checked { server, overview } = check(queue, principal, server_id).await?;
    let version = parse_version(version).map_err(AppError::Validation)?;
    let extension = parse_extension(extension).map_err(AppError::Validation)?;
    require_installed(&overview, version)?;
    if extension.is_built_in(version) {
        let refusal = PhpExtensionRefusal::BuiltIn { extension, version };
        return Err(AppError::Validation(FieldErrors::single(
            "extension",
            format!("{}.", capitalized(&refusal.to_string())),
        )));
    }
    refuse_pending(overview.pending(PhpChange::Remove, version, None))?;
    refuse_pending(overview.pending(PhpChange::ExtensionRemove, version, Some(extension)))?;
    start(
        queue,
        principal,
        &server,
        PackageOperation::PhpExtensionRemove(PhpExtensionInput { version, extension }),
        Some(FollowUp::PhpExtension {
            version,
            extension,
            installed: false,
        }),
        "php.extension_remove_started",
        &summary_of(PhpChange::ExtensionRemove, version, Some(extension)),
    )
    .await
}

/// Updates the extension list of PHP `version` on `server_id` once the job that
/// installed or removed `extension` succeeded. Failures change nothing: the job's
/// page says what went wrong.
pub async fn after_extension_job(
    environment: &OperationEnvironment,
    server_id: i64,
    version: PhpVersion,
    extension: PhpExtension,
    installed: bool,
    finished: Finished<'_>,
) -> Result<(), brokeforge_db::DbError> {
    if !matches!(finished, Finished::Succeeded(_)) {
        return Ok(());
    }
    let records = package_records::server_packages(&environment.db, server_id).await?;
    let Some(record) = records.iter().find(|record| {
        record.package_type == Php::TYPE.as_str()
            && record.package_name == Php::NAME.as_str()
            && record.instance == version.as_str()
    }) else {
        return Ok(());
    };
    let mut extensions = extensions_of(record);
    extensions.retain(|name| name != extension.as_str());
    if installed {
        extensions.push(extension.as_str().to_owned());
    }
    let mut configuration = match &record.configuration.0 {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    configuration.insert("extensions".to_owned(), serde_json::json!(extensions));
    php_table::set_configuration(
        &environment.db,
        server_id,
        Php::TYPE.as_str(),
        Php::NAME.as_str(),
        version.as_str(),
        &serde_json::Value::Object(configuration),
    )
    .await?;
    Ok(())
}
