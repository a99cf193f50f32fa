//! What the PHP command line says about itself: the modules one version loads
//! (`phpX.Y -m`), and which version the `php` command runs
//! (`update-alternatives --query php`).

use brokeforge_core::{Cmd, PhpVersion};

use crate::facts::{ProbeOutput, UnexpectedOutput};
use crate::php::names::cli_binary;

/// The modules `phpX.Y -m` lists, PHP modules and Zend modules alike, as printed
/// (`Zend OPcache`, `SimpleXML`, `pdo_mysql`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhpModules(Vec<String>);

impl PhpModules {
    /// Modules given directly, for tests and facts assembled by hand.
    pub fn new(modules: impl IntoIterator<Item = impl Into<String>>) -> Self {
        PhpModules(modules.into_iter().map(Into::into).collect())
    }

    /// Whether `module` is loaded; PHP compares module names without case.
    pub fn contains(&self, module: &str) -> bool {
        self.0.iter().any(|loaded| loaded.eq_ignore_ascii_case(module))
    }

    /// Whether every module of `modules` is loaded.
    pub fn contains_all(&self, modules: &[&str]) -> bool {
        modules.iter().all(|module| self.contains(module))
    }

    /// The modules, as listed.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// The probe command listing the modules PHP `version` loads on the command line.
pub fn php_modules_cmd(version: PhpVersion) -> Cmd {
    Cmd::new(cli_binary(version)).lit("-m")
}

/// Parses the output of [`php_modules_cmd`]: `None` when that PHP version is not
/// installed (the shell exits with 127, command not found).
pub fn parse_php_modules(output: &ProbeOutput) -> Result<Option<PhpModules>, UnexpectedOutput> {
    match output.exit_code {
        0 => {}
        127 => return Ok(None),
        _ => return Err(UnexpectedOutput("php -m failed".to_owned())),
    }
    if !output.stdout.starts_with("[PHP Modules]") {
        return Err(UnexpectedOutput(format!(
            "expected \"[PHP Modules]\" first, got {:?}",
            output.stdout.lines().next().unwrap_or_default()
        )));
    }
    let modules = output
        .stdout
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('['))
        .map(str::to_owned)
        .collect();
    Ok(Some(PhpModules(modules)))
}

/// Whether an alternative follows the highest priority or an administrator's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlternativeStatus {
    /// The highest-priority choice; installing a newer PHP moves it.
    Auto,
    /// Set by `update-alternatives --set`; installing another PHP leaves it.
    Manual,
}

/// The `php` alternative: which binary `/usr/bin/php` runs and which it could run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhpAlternatives {
    /// `None` when no PHP command line is installed.
    pub status: Option<AlternativeStatus>,
    /// The binary `php` runs now, such as `/usr/bin/php8.3`.
    pub value: Option<String>,
    /// Every installed choice, such as `/usr/bin/php8.2` and `/usr/bin/php8.3`.
    pub choices: Vec<String>,
}

impl PhpAlternatives {
    /// The PHP version `php` runs now.
    pub fn current_version(&self) -> Option<PhpVersion> {
        let value = self.value.as_deref()?;
        PhpVersion::ALL
            .iter()
            .copied()
            .find(|version| value == format!("/usr/bin/{}", cli_binary(*version)))
    }

    /// Whether `version`'s command line is one of the choices.
    pub fn offers(&self, version: PhpVersion) -> bool {
        let binary = format!("/usr/bin/{}", cli_binary(version));
        self.choices.contains(&binary)
    }
}

/// The probe command for [`PhpAlternatives`].
pub fn php_alternatives_cmd() -> Cmd {
    Cmd::new("update-alternatives").lit("--query").lit("php")
}

/// Parses the output of [`php_alternatives_cmd`]. Without any PHP command line,
/// update-alternatives exits with code 2 and `no alternatives for php`.
pub fn parse_php_alternatives(output: &ProbeOutput) -> Result<PhpAlternatives, UnexpectedOutput> {
    if output.exit_code == 2 && output.stderr.contains("no alternatives for php") {
        return Ok(PhpAlternatives::default());
    }
    if output.exit_code != 0 {
        return Err(UnexpectedOutput("update-alternatives failed".to_owned()));
    }
    let mut alternatives = PhpAlternatives::default();
    for line in output.stdout.lines() {
        if let Some(status) = line.strip_prefix("Status: ") {
            alternatives.status = Some(match status.trim() {
                "auto" => AlternativeStatus::Auto,
                "manual" => AlternativeStatus::Manual,
                other => return Err(UnexpectedOutput(format!("unknown alternative status {other:?}"))),
            });
        } else if let Some(value) = line.strip_prefix("Value: ") {
            let value = value.trim();
            alternatives.value = (value != "none").then(|| value.to_owned());
        } else if let Some(choice) = line.strip_prefix("Alternative: ") {
            alternatives.choices.push(choice.trim().to_owned());
        }
    }
    if alternatives.status.is_none() {
        return Err(UnexpectedOutput(format!(
            "expected a \"Status:\" line, got {:?}",
            output.stdout
        )));
    }
    Ok(alternatives)
}
