//! BrokeForge's application layer: the use cases that the web UI, the JSON API and
//! the CLI share. Each use case validates its input into typed values, checks that
//! the caller may act (ownership and token scopes), reads and writes through
//! `brokeforge-db`, enqueues jobs through `brokeforge-queue`, and records what it
//! did in the audit log.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod crypto;
pub mod deployments;
pub mod diagnostics;
pub mod error;
pub mod firewall_rules;
pub mod follow_up;
pub mod jobs;
pub mod onboarding;
pub mod operations;
pub mod output_recording;
pub mod php_versions;
pub mod provisioning;
pub mod servers;
pub mod site_commands;
pub mod site_deploy_keys;
pub mod site_env;
pub mod site_files;
pub mod site_operations;
pub mod sites;
pub mod webhooks;
pub mod wordpress;

pub use error::{AppError, FieldErrors};
