//! The job kinds this control plane runs, registered with the queue's worker pool.
//! Handlers stay thin: load the target, call the use case, report the outcome.

use brokeforge_db::Db;
use brokeforge_queue::Registry;

/// Everything job handlers need from the control plane.
#[derive(Clone)]
pub struct JobEnvironment {
    pub db: Db,
}

/// The registry of every job kind, bound to `environment`. Package operations are
/// registered here as they are added.
pub fn registry(environment: &JobEnvironment) -> Registry {
    let _ = environment;
    Registry::new()
}
