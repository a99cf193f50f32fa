//! A site's own deploy key: an ed25519 key pair generated on the server, as
//! brokeforge, under [`SITE_KEYS_DIRECTORY`]. Its private half never leaves the
//! server; the application reads the public half back (with
//! [`public_key_cmd`]) for the user to add to the repository's deploy keys. While a
//! site has its own key, Git logs in with it ([`GitKey::Site`]) instead of the
//! server's, so one repository's access does not open every other repository the
//! server's key can read.
//!
//! [`SiteDeployKeyInstall`] makes the pair when it is missing (an existing pair is
//! kept, so the key the user added stays valid); [`SiteDeployKeyRemove`] deletes it.
//! Removing the site deletes it too.

use std::convert::Infallible;

use brokeforge_core::{Cmd, Domain, Plan, RemotePath, ShellArg};
use serde::{Deserialize, Serialize};

use crate::facts::{FactError, FactProbe, ProbeOutputs, file_contents_cmd, parse_path_kinds, path_kinds_cmd};
use crate::framework::{Action, Operation};

use super::GitRepository;
use super::git::{GitKey, SITE_KEYS_DIRECTORY, site_key_path};
use super::layout::{deserialize_site_domain, path};

/// Which site's key pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDeployKeyInput {
    #[serde(deserialize_with = "deserialize_site_domain")]
    pub domain: Domain,
}

impl SiteDeployKeyInput {
    /// The key Git uses once the pair exists.
    pub fn git_key(&self) -> GitKey {
        GitKey::Site {
            domain: self.domain.clone(),
        }
    }
}

/// Which halves of the pair exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteDeployKeyFacts {
    pub private_key_exists: bool,
    pub public_key_exists: bool,
}

const KEY_FILES_PROBE: &str = "site_deploy_key_files";

/// The private and the public half of `domain`'s key.
pub(crate) fn key_paths(domain: &Domain) -> [RemotePath; 2] {
    let private = site_key_path(domain);
    let public = path(&format!("{private}.pub"));
    [private, public]
}

fn key_files_probe(domain: &Domain) -> FactProbe {
    FactProbe::new::<GitRepository>(KEY_FILES_PROBE, path_kinds_cmd(&key_paths(domain)))
}

fn parse_key_files(domain: &Domain, outputs: &ProbeOutputs) -> Result<SiteDeployKeyFacts, FactError> {
    let paths = key_paths(domain);
    let kinds = outputs.read(KEY_FILES_PROBE, |output| parse_path_kinds(output, &paths))?;
    Ok(SiteDeployKeyFacts {
        private_key_exists: kinds[0].is_some(),
        public_key_exists: kinds[1].is_some(),
    })
}

/// Prints the public half of `domain`'s key, as brokeforge (the application runs it
/// after [`SiteDeployKeyInstall`]).
pub fn public_key_cmd(domain: &Domain) -> Cmd {
    let [_, public] = key_paths(domain);
    file_contents_cmd(&public)
}

milestones! {
    /// Milestones of generating a site's deploy key.
    pub enum SiteDeployKeyInstallMilestone {
        GenerateKey => ("generate_key", "Generating the site's deploy key"),
        Complete => ("complete", "Complete"),
    }
}

/// Generates the site's key pair on the server, unless both halves exist.
pub struct SiteDeployKeyInstall;

impl Operation for SiteDeployKeyInstall {
    type Package = GitRepository;
    const ACTION: Action = Action::Install;
    type Milestone = SiteDeployKeyInstallMilestone;
    type Input = SiteDeployKeyInput;
    type Facts = SiteDeployKeyFacts;
    type Error = Infallible;

    fn fact_probes(input: &SiteDeployKeyInput) -> Vec<FactProbe> {
        vec![key_files_probe(&input.domain)]
    }

    fn parse_facts(input: &SiteDeployKeyInput, outputs: &ProbeOutputs) -> Result<SiteDeployKeyFacts, FactError> {
        parse_key_files(&input.domain, outputs)
    }

    fn plan(input: &SiteDeployKeyInput, facts: &SiteDeployKeyFacts) -> Result<Plan, Infallible> {
        let mut plan = Self::plan_writer();
        let steps = plan.milestone(SiteDeployKeyInstallMilestone::GenerateKey);
        if !(facts.private_key_exists && facts.public_key_exists) {
            let [private, public] = key_paths(&input.domain);
            steps.run(
                Cmd::new("mkdir")
                    .lit("-p")
                    .lit("-m")
                    .lit("0700")
                    .lit("--")
                    .lit(SITE_KEYS_DIRECTORY)
                    .and(Cmd::new("rm").lit("-f").lit("--").arg(&private).arg(&public))
                    .and(
                        Cmd::new("ssh-keygen")
                            .lit("-q")
                            .lit("-t")
                            .lit("ed25519")
                            .lit("-N")
                            .arg(ShellArg::new("").expect("an empty text holds no NUL byte"))
                            .lit("-C")
                            .arg(
                                ShellArg::new(format!("brokeforge-site-{}", input.domain))
                                    .expect("a domain holds no NUL byte"),
                            )
                            .lit("-f")
                            .arg(&private),
                    ),
            );
        }
        plan.milestone(SiteDeployKeyInstallMilestone::Complete);
        Ok(plan.finish())
    }
}

milestones! {
    /// Milestones of deleting a site's deploy key.
    pub enum SiteDeployKeyRemoveMilestone {
        RemoveKey => ("remove_key", "Deleting the site's deploy key"),
        Complete => ("complete", "Complete"),
    }
}

/// Deletes the site's key pair from the server.
pub struct SiteDeployKeyRemove;

impl Operation for SiteDeployKeyRemove {
    type Package = GitRepository;
    const ACTION: Action = Action::Remove;
    type Milestone = SiteDeployKeyRemoveMilestone;
    type Input = SiteDeployKeyInput;
    type Facts = SiteDeployKeyFacts;
    type Error = Infallible;

    fn fact_probes(input: &SiteDeployKeyInput) -> Vec<FactProbe> {
        vec![key_files_probe(&input.domain)]
    }

    fn parse_facts(input: &SiteDeployKeyInput, outputs: &ProbeOutputs) -> Result<SiteDeployKeyFacts, FactError> {
        parse_key_files(&input.domain, outputs)
    }

    fn plan(input: &SiteDeployKeyInput, facts: &SiteDeployKeyFacts) -> Result<Plan, Infallible> {
        let mut plan = Self::plan_writer();
        let steps = plan.milestone(SiteDeployKeyRemoveMilestone::RemoveKey);
        if facts.private_key_exists || facts.public_key_exists {
            let [private, public] = key_paths(&input.domain);
            steps.run(Cmd::new("rm").lit("-f").lit("--").arg(&private).arg(&public));
        }
        plan.milestone(SiteDeployKeyRemoveMilestone::Complete);
        Ok(plan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SiteDeployKeyInput {
        SiteDeployKeyInput {
            domain: "shop.example.com".parse().unwrap(),
        }
    }

    fn facts(private_key_exists: bool, public_key_exists: bool) -> SiteDeployKeyFacts {
        SiteDeployKeyFacts {
            private_key_exists,
            public_key_exists,
        }
    }

    #[test]
    fn a_missing_pair_is_generated_without_a_passphrase_prompt() {
        let plan = SiteDeployKeyInstall::plan(&input(), &facts(false, false)).unwrap();
        insta::assert_snapshot!(plan.to_string());
    }

    #[test]
    fn a_half_pair_is_made_again_and_a_whole_one_kept() {
        let half = SiteDeployKeyInstall::plan(&input(), &facts(true, false)).unwrap();
        assert!(half.to_string().contains("ssh-keygen"), "{half}");
        let whole = SiteDeployKeyInstall::plan(&input(), &facts(true, true)).unwrap();
        assert!(!whole.to_string().contains("ssh-keygen"), "{whole}");
    }

    #[test]
    fn removal_deletes_both_halves_only_when_there() {
        let plan = SiteDeployKeyRemove::plan(&input(), &facts(true, true)).unwrap();
        let text = plan.to_string();
        assert!(
            text.contains(
                "rm -f -- /home/brokeforge/.ssh/sites/shop.example.com /home/brokeforge/.ssh/sites/shop.example.com.pub"
            ),
            "{text}"
        );
        let nothing = SiteDeployKeyRemove::plan(&input(), &facts(false, false)).unwrap();
        assert!(!nothing.to_string().contains("rm -f"), "{nothing}");
    }

    #[test]
    fn the_key_git_uses_is_the_sites() {
        assert_eq!(
            input().git_key().private_key_path().to_string(),
            "/home/brokeforge/.ssh/sites/shop.example.com"
        );
    }
}
