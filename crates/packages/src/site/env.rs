//! A site's environment file: Laravel's (or any PHP site's) `.env`, WordPress's
//! `wp-config.php`, kept in the site's `shared/` directory and linked into every
//! release. Its contents are secrets (database passwords, application keys):
//!
//! - [`env_file_probe`] reads the file (as brokeforge) and [`parse_env_file`] returns
//!   it as a [`Secret`], so it never prints by accident;
//! - [`EnvFileWrite`] uploads new contents as [`FileContents::Secret`] bytes (mode
//!   0600, atomically: a temporary file renamed over the old one), which plans and
//!   events show as `secret contents` and whose text the executor scrubs from any
//!   output. Contents equal to the file's give a plan that changes nothing.
//!
//! [`EnvContents`] deliberately cannot be serialized: a job payload stored in the
//! database would hold the secret in clear. The application keeps the contents sealed
//! (or in memory) and builds [`EnvFileWriteInput`] only to run the operation, as it
//! builds other operations' payloads in memory; deserializing (from a request) works.
//!
//! A Laravel site that caches its configuration (`php artisan config:cache` in its
//! deploy script) reads a changed `.env` only after its next deployment.

use brokeforge_core::{Domain, FileContents, Plan, RemotePath, Secret};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::facts::{FactError, FactProbe, ProbeOutput, ProbeOutputs, UnexpectedOutput, file_contents_cmd};
use crate::framework::{Action, Operation};

use super::layout::{SiteLayout, deserialize_site_domain};
use super::{EnvFile, SiteType};

string_enum! {
    /// Which environment file: `.env`, or WordPress's `wp-config.php`.
    pub enum EnvFileName ("environment file") {
        DotEnv => ".env",
        WpConfig => "wp-config.php",
    }
}

impl EnvFileName {
    /// The environment file of a site type: `wp-config.php` for WordPress, `.env`
    /// otherwise.
    pub const fn for_site_type(site_type: SiteType) -> Self {
        match site_type {
            SiteType::WordPress => EnvFileName::WpConfig,
            SiteType::Static | SiteType::Php | SiteType::Laravel => EnvFileName::DotEnv,
        }
    }

    /// The file's path: `<site>/shared/<name>`.
    pub fn path(self, layout: &SiteLayout) -> RemotePath {
        layout.shared().join(self.as_str()).expect("a fixed name")
    }
}

/// Why environment file contents are refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EnvContentsError {
    #[error("an environment file can be at most {max} bytes long")]
    TooLong { max: usize },
}

/// The contents of an environment file: secret bytes, at most 256 KiB. Debug prints
/// `***`; serializing fails (see the module documentation).
#[derive(Clone)]
pub struct EnvContents(Secret<Vec<u8>>);

impl EnvContents {
    /// The longest file, in bytes.
    pub const MAX_LENGTH: usize = 256 * 1024;

    /// Wraps `bytes`, refusing more than [`EnvContents::MAX_LENGTH`].
    pub fn new(bytes: Vec<u8>) -> Result<Self, EnvContentsError> {
        if bytes.len() > Self::MAX_LENGTH {
            return Err(EnvContentsError::TooLong { max: Self::MAX_LENGTH });
        }
        Ok(EnvContents(Secret::new(bytes)))
    }

    /// The secret bytes.
    pub fn secret(&self) -> &Secret<Vec<u8>> {
        &self.0
    }
}

impl std::fmt::Debug for EnvContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnvContents({:?})", self.0)
    }
}

impl PartialEq for EnvContents {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose() == other.0.expose()
    }
}

impl Eq for EnvContents {}

/// Serializing fails, so the secret cannot end up in a stored job payload.
impl Serialize for EnvContents {
    fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "environment file contents are secret and are never serialized; keep them sealed and build the \
             operation's input in memory",
        ))
    }
}

/// Deserializes from text (as a request carries it), through the size check.
impl<'de> Deserialize<'de> for EnvContents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        EnvContents::new(text.into_bytes()).map_err(serde::de::Error::custom)
    }
}

/// What writing a site's environment file needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFileWriteInput {
    #[serde(deserialize_with = "deserialize_site_domain")]
    pub domain: Domain,
    pub file: EnvFileName,
    pub contents: EnvContents,
}

/// The probe key of [`env_file_probe`].
pub const ENV_FILE_PROBE: &str = "env_file";

/// The probe that reads a site's environment file, as brokeforge.
pub fn env_file_probe(domain: &Domain, file: EnvFileName) -> FactProbe {
    FactProbe::new::<EnvFile>(ENV_FILE_PROBE, file_contents_cmd(&file.path(&SiteLayout::new(domain))))
}

/// Parses the output of [`env_file_probe`]: the contents as a secret, or `None` when
/// the file does not exist yet.
pub fn parse_env_file(output: &ProbeOutput) -> Result<Option<Secret<String>>, UnexpectedOutput> {
    match output.exit_code {
        0 => Ok(Some(Secret::new(output.stdout.clone()))),
        1 if output.stderr.contains("No such file or directory") => Ok(None),
        _ => Err(UnexpectedOutput("cannot read the environment file".to_owned())),
    }
}

/// What writing the environment file reads: its current contents, if it exists.
#[derive(Clone, Debug)]
pub struct EnvFileFacts {
    pub current: Option<Secret<String>>,
}

milestones! {
    /// Milestones of writing a site's environment file.
    pub enum EnvFileWriteMilestone {
        WriteFile => ("write_file", "Writing the environment file"),
        Complete => ("complete", "Complete"),
    }
}

/// Writes a site's environment file as secret bytes.
pub struct EnvFileWrite;

impl Operation for EnvFileWrite {
    type Package = EnvFile;
    const ACTION: Action = Action::Install;
    type Milestone = EnvFileWriteMilestone;
    type Input = EnvFileWriteInput;
    type Facts = EnvFileFacts;
    type Error = std::convert::Infallible;

    fn fact_probes(input: &EnvFileWriteInput) -> Vec<FactProbe> {
        vec![env_file_probe(&input.domain, input.file)]
    }

    fn parse_facts(_input: &EnvFileWriteInput, outputs: &ProbeOutputs) -> Result<EnvFileFacts, FactError> {
        Ok(EnvFileFacts {
            current: outputs.read(ENV_FILE_PROBE, parse_env_file)?,
        })
    }

    fn plan(input: &EnvFileWriteInput, facts: &EnvFileFacts) -> Result<Plan, std::convert::Infallible> {
        let layout = SiteLayout::new(&input.domain);
        let mut plan = Self::plan_writer();
        let steps = plan.milestone(EnvFileWriteMilestone::WriteFile);
        let unchanged = facts
            .current
            .as_ref()
            .is_some_and(|current| current.expose().as_bytes() == input.contents.secret().expose().as_slice());
        if !unchanged {
            steps.upload(
                input.file.path(&layout),
                FileContents::Secret(input.contents.secret().clone()),
                0o600,
                None,
            );
        }
        plan.milestone(EnvFileWriteMilestone::Complete);
        Ok(plan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_never_serialize_and_never_print() {
        let contents = EnvContents::new(b"DB_PASSWORD=hunter2\n".to_vec()).unwrap();
        assert!(!format!("{contents:?}").contains("hunter2"));
        let error = serde_json::to_string(&contents).unwrap_err();
        assert!(error.to_string().contains("never serialized"), "{error}");
        let parsed: EnvContents = serde_json::from_str("\"APP_KEY=x\"").unwrap();
        assert_eq!(parsed.secret().expose(), b"APP_KEY=x");
        assert!(EnvContents::new(vec![b'x'; 256 * 1024 + 1]).is_err());
        assert_eq!(EnvFileName::for_site_type(SiteType::WordPress), EnvFileName::WpConfig);
        assert_eq!(EnvFileName::for_site_type(SiteType::Laravel).as_str(), ".env");
    }
}
