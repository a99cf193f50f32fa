//! Process-local change counters. Every repository function that changes what a
//! cached read shows bumps the counter of its [`Topic`] after the change is
//! committed, so a cache that remembers the counters it was filled under can tell at
//! once that it is stale. Writes made by other processes are not counted: caches
//! bound how long they trust an entry instead (see `brokeforge_web::cache`).
//!
//! All [`Db`](crate::Db) handles that one process opens on the same database share
//! one set of counters, whichever handle made the write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Users, sessions and API tokens: a sign-out, a revoked token, a password
    /// change or a deleted user.
    Credentials,
    /// Server records, including their connection and provisioning status.
    Servers,
    /// Jobs: enqueued, claimed, finished, cancelled or retried.
    Jobs,
    /// The audit log.
    Audit,
}

impl Topic {
    fn index(self) -> usize {
        match self {
            Topic::Credentials => 0,
            Topic::Servers => 1,
            Topic::Jobs => 2,
            Topic::Audit => 3,
        }
    }
}

/// The change counters of one database.
#[derive(Debug, Default)]
pub struct Changes {
    counters: [AtomicU64; 4],
}

impl Changes {
    /// Records that `topic` changed. Call it after the change is committed.
    pub fn bump(&self, topic: Topic) {
        self.counters[topic.index()].fetch_add(1, Ordering::SeqCst);
    }

    /// A number that grows whenever any of `topics` changes (counters only grow,
    /// so their sum does too).
    pub fn generation(&self, topics: &[Topic]) -> u64 {
        topics
            .iter()
            .map(|topic| self.counters[topic.index()].load(Ordering::SeqCst))
            .fold(0, u64::wrapping_add)
    }
}

/// The counters of the database named `identity` (its SQLite file or its
/// PostgreSQL URL), shared by every handle this process opens on it.
pub(crate) fn for_database(identity: &str) -> Arc<Changes> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<Changes>>>> = OnceLock::new();
    let mut registry = REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(changes) = registry.get(identity).and_then(Weak::upgrade) {
        return changes;
    }
    registry.retain(|_, changes| changes.strong_count() > 0);
    let changes = Arc::new(Changes::default());
    registry.insert(identity.to_owned(), Arc::downgrade(&changes));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_grow_with_their_topics_only() {
        let changes = Changes::default();
        let before = changes.generation(&[Topic::Servers, Topic::Jobs]);
        changes.bump(Topic::Audit);
        assert_eq!(changes.generation(&[Topic::Servers, Topic::Jobs]), before);
        changes.bump(Topic::Jobs);
        assert_eq!(changes.generation(&[Topic::Servers, Topic::Jobs]), before + 1);
        assert_eq!(changes.generation(&[Topic::Credentials]), 0);
    }

    #[test]
    fn handles_on_one_database_share_their_counters() {
        let first = for_database("test:shared");
        let second = for_database("test:shared");
        let other = for_database("test:other");
        first.bump(Topic::Servers);
        assert_eq!(second.generation(&[Topic::Servers]), 1);
        assert_eq!(other.generation(&[Topic::Servers]), 0);
    }
}
