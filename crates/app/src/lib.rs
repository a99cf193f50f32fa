//! BrokeForge's application layer: the use cases that the web UI, the JSON API and
//! the CLI share. Each use case validates its input into typed values, reads and
//! writes through `brokeforge-db`, and enqueues jobs through `brokeforge-queue`.

pub mod accounts;
pub mod jobs;
