//! Shared helpers for the tests against a real OpenSSH server: targets for a test
//! server, an observer that records every callback, and small plan builders.

#![allow(dead_code)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use brokeforge_core::{Cmd, Milestone, Plan, PlanBuilder, Record, RemoteUser, Secret, Step};
use brokeforge_ssh::{
    ClientKey, HostKey, MilestoneReached, ObserverError, PlanObserver, PoolConfig, SshPool, StepReport, Stream, Target,
};
use brokeforge_testkit::SshServer;

/// A target that logs in to `server` as its test account with its key pair.
pub fn target(server: &SshServer) -> Target {
    Target::new(
        server.host(),
        server.port(),
        server.user(),
        client_key(server),
        vec![HostKey::parse(server.host_public_key()).unwrap()],
    )
}

pub fn client_key(server: &SshServer) -> ClientKey {
    ClientKey::from_openssh(&Secret::from(server.client_private_key())).unwrap()
}

/// A pool whose kill grace is short, so that timeout tests stay quick.
pub fn pool() -> SshPool {
    SshPool::new(PoolConfig {
        kill_grace: Duration::from_secs(2),
        ..PoolConfig::default()
    })
}

/// A plan builder whose commands run as root (tests log in as the test account).
pub fn builder() -> PlanBuilder {
    Plan::builder(RemoteUser::Root)
}

/// A command written as shell text by the test, like any developer-written literal.
pub fn script(text: &'static str) -> Cmd {
    Cmd::new(text)
}

/// Milestones of a made-up operation.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Stage {
    Prepare,
    Install,
    Finish,
}

impl Milestone for Stage {
    const ALL: &'static [Self] = &[Stage::Prepare, Stage::Install, Stage::Finish];

    fn key(self) -> &'static str {
        match self {
            Stage::Prepare => "prepare",
            Stage::Install => "install",
            Stage::Finish => "finish",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Stage::Prepare => "Preparing",
            Stage::Install => "Installing",
            Stage::Finish => "Finishing",
        }
    }
}

/// One observer callback.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Milestone(usize, &'static str),
    Started(usize, String),
    Output(usize, Stream, Vec<u8>),
    Finished(StepReport),
    Persist(usize, String),
}

/// Records every callback with the time it came.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<(Instant, Event)>>,
    /// Makes `on_persist` fail, as a broken database would.
    pub fail_persist: bool,
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, event)| event.clone())
            .collect()
    }

    pub fn timed_events(&self) -> Vec<(Instant, Event)> {
        self.events.lock().unwrap().clone()
    }

    /// Everything a step wrote to `stream`, joined.
    pub fn output(&self, step_index: usize, stream: Stream) -> Vec<u8> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Output(index, event_stream, chunk) if index == step_index && event_stream == stream => {
                    Some(chunk)
                }
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The events without output chunks, which depend on how the network cut them.
    pub fn outline(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Milestone(index, key) => Some(format!("{index} milestone {key}")),
                Event::Started(index, text) => Some(format!("{index} started {text}")),
                Event::Finished(report) => Some(format!("{} finished {}", report.step_index, report.exit_code)),
                Event::Persist(index, name) => Some(format!("{index} persist {name}")),
                Event::Output(..) => None,
            })
            .collect()
    }

    /// Every text any callback received, for secret checks.
    pub fn all_text(&self) -> String {
        let mut text = String::new();
        for event in self.events() {
            match event {
                Event::Output(_, _, chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
                Event::Finished(report) => {
                    text.push_str(&report.stdout_tail);
                    text.push_str(&report.stderr_tail);
                }
                other => text.push_str(&format!("{other:?}")),
            }
            text.push('\n');
        }
        text
    }

    /// A recorder whose `on_persist` fails.
    pub fn failing_persist() -> Recorder {
        Recorder {
            fail_persist: true,
            ..Recorder::default()
        }
    }

    fn push(&self, event: Event) {
        self.events.lock().unwrap().push((Instant::now(), event));
    }
}

impl PlanObserver for Recorder {
    async fn on_milestone(&self, step_index: usize, milestone: MilestoneReached) -> Result<(), ObserverError> {
        self.push(Event::Milestone(step_index, milestone.key));
        Ok(())
    }

    async fn on_step_started(&self, step_index: usize, step: &Step) {
        self.push(Event::Started(step_index, step.to_string()));
    }

    async fn on_output(&self, step_index: usize, stream: Stream, chunk: &[u8]) {
        self.push(Event::Output(step_index, stream, chunk.to_vec()));
    }

    async fn on_step_finished(&self, report: &StepReport) -> Result<(), ObserverError> {
        self.push(Event::Finished(report.clone()));
        Ok(())
    }

    async fn on_persist(&self, step_index: usize, record: &Record) -> Result<(), ObserverError> {
        if self.fail_persist {
            return Err("the database is locked".into());
        }
        self.push(Event::Persist(step_index, record.package_name.to_owned()));
        Ok(())
    }
}

/// Lists the test account's live processes (zombies excluded) over its own channel.
pub async fn remote_processes(pool: &SshPool, target: &Target) -> Vec<String> {
    let output = pool
        .run_command(
            target,
            &Cmd::new("ps")
                .lit("-u")
                .arg(brokeforge_core::ShellArg::new(target.user.clone()).unwrap())
                .lit("-o")
                .lit("stat=,args="),
            Duration::from_secs(10),
        )
        .await
        .expect("ps runs");
    output
        .stdout_text()
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('Z'))
        .map(str::to_owned)
        .collect()
}
