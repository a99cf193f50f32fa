//! Short-lived in-process caches for the hottest reads: who a bearer token or a
//! session cookie belongs to, and a user's most requested pages (the dashboard and
//! the server list of the API).
//!
//! An entry is trusted while two things hold: the change counters of the topics it
//! was read from (`brokeforge_db::changes`) have not moved since, and it is younger
//! than [`TTL`] (and, for a credential, not past its expiry). This process bumps the
//! counters after every write that could change an entry, so a sign-out, a revoked
//! token or an edited server is seen by the very next request; writes made by other
//! processes (another control-plane node, a separate `brokeforge worker`,
//! `brokeforge admin`) are seen within [`TTL`]. Page keys always carry the user, and
//! pages that embed the session's form token also carry the session, so no entry is
//! ever served to anyone else. Concurrent misses on one key wait for a single read
//! instead of all querying the database.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use brokeforge_app::AppError;
use brokeforge_app::auth::{self, Authenticated, Credential, Principal};
use brokeforge_db::{Db, Topic};

/// How long an entry is trusted without a change counted in this process.
pub const TTL: Duration = Duration::from_secs(1);

/// How many principals are kept at most.
const PRINCIPAL_CAPACITY: usize = 4096;
/// How many pages are kept at most (a page is tens of kilobytes).
const PAGE_CAPACITY: usize = 256;
/// How often a full cache looks for dead entries to drop.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A map whose entries expire after a time and whenever a generation moves.
pub struct TtlCache<K, V> {
    state: Mutex<State<K, V>>,
    ttl: Duration,
    capacity: usize,
}

struct State<K, V> {
    slots: HashMap<K, Arc<Slot<V>>>,
    swept_at: Instant,
}

struct Slot<V> {
    entry: Mutex<Option<Entry<V>>>,
    /// Held by the one caller reading the value from the database.
    fill: tokio::sync::Mutex<()>,
}

struct Entry<V> {
    value: V,
    generation: u64,
    /// When the entry should be read again, while it may still be served.
    refresh_at: Instant,
    valid_until: Instant,
}

impl<V: Clone> Slot<V> {
    /// The value if it may still be served, and whether it is due to be read again.
    fn valid(&self, generation: u64) -> Option<(V, bool)> {
        let entry = lock(&self.entry);
        let entry = entry.as_ref()?;
        let now = Instant::now();
        (entry.generation == generation && now < entry.valid_until)
            .then(|| (entry.value.clone(), now >= entry.refresh_at))
    }

    fn live(&self, now: Instant) -> bool {
        lock(&self.entry).as_ref().is_some_and(|entry| now < entry.valid_until)
    }
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// A cache whose entries live at most `ttl`, holding about `capacity` keys.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        TtlCache {
            state: Mutex::new(State {
                slots: HashMap::new(),
                swept_at: Instant::now(),
            }),
            ttl,
            capacity,
        }
    }

    /// The value cached for `key` when it is still valid, or else the value `fill`
    /// reads, which is then cached. `generation` reads the change counters the
    /// value depends on. `fill` gives the value and the moment it must stop being
    /// used (if sooner than the time to live), or `None` to cache nothing.
    ///
    /// Past half its time to live, an entry is read again by the first caller that
    /// finds it so, while the others keep getting it until it expires: a key in
    /// steady use never makes its callers wait for the database.
    pub async fn get_or_fill<E, F, Fut>(&self, key: K, generation: impl Fn() -> u64, fill: F) -> Result<Option<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<(V, Option<Instant>)>, E>>,
    {
        let Some(slot) = self.slot(&key) else {
            // Full of live entries: answer without caching.
            return Ok(fill().await?.map(|(value, _)| value));
        };
        let _filling = match slot.valid(generation()) {
            Some((value, false)) => return Ok(Some(value)),
            Some((value, true)) => match slot.fill.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(Some(value)),
            },
            None => {
                let guard = slot.fill.lock().await;
                if let Some((value, false)) = slot.valid(generation()) {
                    return Ok(Some(value));
                }
                guard
            }
        };
        // The generation is read before the database, so a write that lands during
        // the read leaves the entry stale, never wrongly fresh.
        let before = generation();
        let filled_at = Instant::now();
        let filled = fill().await?;
        let mut entry = lock(&slot.entry);
        *entry = filled.as_ref().map(|(value, not_after)| {
            let expiry = filled_at + self.ttl;
            Entry {
                value: value.clone(),
                generation: before,
                refresh_at: filled_at + self.ttl / 2,
                valid_until: not_after.map_or(expiry, |not_after| not_after.min(expiry)),
            }
        });
        Ok(filled.map(|(value, _)| value))
    }

    fn slot(&self, key: &K) -> Option<Arc<Slot<V>>> {
        let mut state = lock(&self.state);
        if let Some(slot) = state.slots.get(key) {
            return Some(Arc::clone(slot));
        }
        if state.slots.len() >= self.capacity {
            let now = Instant::now();
            if now.duration_since(state.swept_at) < SWEEP_INTERVAL {
                return None;
            }
            state.swept_at = now;
            // Slots someone is using right now stay, and so do live entries.
            state
                .slots
                .retain(|_, slot| Arc::strong_count(slot) > 1 || slot.live(now));
            if state.slots.len() >= self.capacity {
                return None;
            }
        }
        let slot = Arc::new(Slot {
            entry: Mutex::new(None),
            fill: tokio::sync::Mutex::new(()),
        });
        state.slots.insert(key.clone(), Arc::clone(&slot));
        Some(slot)
    }

    /// How many keys the cache holds.
    pub fn len(&self) -> usize {
        lock(&self.state).slots.len()
    }

    /// True when the cache holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a principal proved who they are, for the principal cache's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CredentialKind {
    Token,
    Session,
}

/// The key of a cached page: the user, the credential when the page embeds the
/// session's form token, the page and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    user_id: i64,
    credential: Option<(CredentialKind, i64)>,
    page: &'static str,
    variant: String,
}

impl PageKey {
    /// A page that is the same for every credential of the caller's user.
    pub fn for_user(principal: &Principal, page: &'static str, variant: String) -> PageKey {
        PageKey {
            user_id: principal.user_id,
            credential: None,
            page,
            variant,
        }
    }

    /// A page that embeds something of the caller's credential (the form token).
    pub fn for_credential(principal: &Principal, page: &'static str, variant: String) -> PageKey {
        let credential = match principal.credential {
            Credential::Session { session_id, .. } => (CredentialKind::Session, session_id),
            Credential::Token { token_id } => (CredentialKind::Token, token_id),
        };
        PageKey {
            user_id: principal.user_id,
            credential: Some(credential),
            page,
            variant,
        }
    }
}

/// The caches a web process keeps.
pub struct Caches {
    principals: TtlCache<(CredentialKind, [u8; 32]), Principal>,
    pages: TtlCache<PageKey, Bytes>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            principals: TtlCache::new(TTL, PRINCIPAL_CAPACITY),
            pages: TtlCache::new(TTL, PAGE_CAPACITY),
        }
    }
}

fn digest(secret: &str) -> [u8; 32] {
    let mut key = [0; 32];
    key.copy_from_slice(&brokeforge_app::crypto::sha256(secret));
    key
}

/// The instant a credential expiring at `expires_at_ms` (since the epoch) stops working.
fn instant_at(expires_at_ms: i64) -> Instant {
    let remaining = expires_at_ms.saturating_sub(brokeforge_db::clock::now_millis()).max(0);
    Instant::now() + Duration::from_millis(u64::try_from(remaining).unwrap_or(0))
}

fn cacheable(authenticated: Option<Authenticated>) -> Option<(Principal, Option<Instant>)> {
    authenticated.map(|authenticated| (authenticated.principal, authenticated.expires_at_ms.map(instant_at)))
}

fn with_ip(principal: Option<Principal>, ip: Option<&str>) -> Option<Principal> {
    principal.map(|mut principal| {
        principal.ip = ip.map(str::to_owned);
        principal
    })
}

impl Caches {
    /// The principal behind a bearer token (see [`auth::authenticate_token`]).
    pub async fn token_principal(&self, db: &Db, token: &str, ip: Option<&str>) -> Result<Option<Principal>, AppError> {
        let principal = self
            .principals
            .get_or_fill(
                (CredentialKind::Token, digest(token)),
                || db.changes().generation(&[Topic::Credentials]),
                || async { Ok::<_, AppError>(cacheable(auth::check_token(db, token, None).await?)) },
            )
            .await?;
        Ok(with_ip(principal, ip))
    }

    /// The principal behind a session cookie (see [`auth::authenticate_session`]).
    pub async fn session_principal(
        &self,
        db: &Db,
        cookie_value: &str,
        ip: Option<&str>,
    ) -> Result<Option<Principal>, AppError> {
        let principal = self
            .principals
            .get_or_fill(
                (CredentialKind::Session, digest(cookie_value)),
                || db.changes().generation(&[Topic::Credentials]),
                || async { Ok::<_, AppError>(cacheable(auth::check_session(db, cookie_value, None).await?)) },
            )
            .await?;
        Ok(with_ip(principal, ip))
    }

    /// The page under `key`, rendered by `render` unless a valid copy is cached.
    /// `topics` are what the page shows; the principal it was rendered for counts
    /// too, so a change of credentials also renders it again.
    pub async fn page<F, Fut>(&self, db: &Db, key: PageKey, topics: &[Topic], render: F) -> Result<Bytes, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, AppError>>,
    {
        let page = self
            .pages
            .get_or_fill(
                key,
                || {
                    let changes = db.changes();
                    changes
                        .generation(topics)
                        .wrapping_add(changes.generation(&[Topic::Credentials]))
                },
                || async { Ok::<_, AppError>(Some((render().await?, None))) },
            )
            .await?;
        page.ok_or_else(|| AppError::internal("a rendered page went missing from the cache"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use super::*;

    type Fill = Result<Option<(u32, Option<Instant>)>, ()>;

    async fn get(cache: &TtlCache<&'static str, u32>, generation: &AtomicU64, reads: &AtomicUsize, value: u32) -> u32 {
        cache
            .get_or_fill(
                "key",
                || generation.load(Ordering::SeqCst),
                || async {
                    reads.fetch_add(1, Ordering::SeqCst);
                    Fill::Ok(Some((value, None)))
                },
            )
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn a_moved_generation_reads_again_at_once() {
        let cache = TtlCache::new(Duration::from_secs(60), 8);
        let (generation, reads) = (AtomicU64::new(0), AtomicUsize::new(0));
        assert_eq!(get(&cache, &generation, &reads, 1).await, 1);
        assert_eq!(get(&cache, &generation, &reads, 2).await, 1, "cached");
        generation.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            get(&cache, &generation, &reads, 3).await,
            3,
            "read again after the change"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn entries_expire_after_the_time_to_live() {
        let cache = TtlCache::new(Duration::from_millis(50), 8);
        let (generation, reads) = (AtomicU64::new(0), AtomicUsize::new(0));
        assert_eq!(get(&cache, &generation, &reads, 1).await, 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(get(&cache, &generation, &reads, 2).await, 2);
    }

    #[tokio::test]
    async fn an_earlier_deadline_of_the_value_wins() {
        let cache: TtlCache<&'static str, u32> = TtlCache::new(Duration::from_secs(60), 8);
        let deadline = Instant::now() + Duration::from_millis(40);
        let first = cache
            .get_or_fill("key", || 0, || async { Fill::Ok(Some((1, Some(deadline)))) })
            .await;
        assert_eq!(first, Ok(Some(1)));
        tokio::time::sleep(Duration::from_millis(60)).await;
        let second = cache
            .get_or_fill("key", || 0, || async { Fill::Ok(Some((2, None))) })
            .await;
        assert_eq!(second, Ok(Some(2)), "the first value was past its deadline");
    }

    #[tokio::test]
    async fn nothing_is_cached_for_none_or_an_error() {
        let cache: TtlCache<&'static str, u32> = TtlCache::new(Duration::from_secs(60), 8);
        assert_eq!(
            cache.get_or_fill("key", || 0, || async { Fill::Ok(None) }).await,
            Ok(None)
        );
        assert_eq!(
            cache.get_or_fill("key", || 0, || async { Fill::Err(()) }).await,
            Err(())
        );
        let third = cache
            .get_or_fill("key", || 0, || async { Fill::Ok(Some((3, None))) })
            .await;
        assert_eq!(third, Ok(Some(3)));
    }

    #[tokio::test]
    async fn past_half_its_life_an_entry_is_read_again_without_making_others_wait() {
        let cache = Arc::new(TtlCache::new(Duration::from_secs(2), 8));
        let first = cache
            .get_or_fill("key", || 0, || async { Fill::Ok(Some((1, None))) })
            .await;
        assert_eq!(first, Ok(Some(1)));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // One caller reads again; while it does, another still gets the valid entry.
        let (started, release) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        );
        let refresher = {
            let (cache, started, release) = (Arc::clone(&cache), Arc::clone(&started), Arc::clone(&release));
            tokio::spawn(async move {
                cache
                    .get_or_fill(
                        "key",
                        || 0,
                        || async move {
                            started.notify_one();
                            release.notified().await;
                            Fill::Ok(Some((2, None)))
                        },
                    )
                    .await
            })
        };
        started.notified().await;
        let during = cache
            .get_or_fill("key", || 0, || async { Fill::Ok(Some((3, None))) })
            .await;
        assert_eq!(during, Ok(Some(1)), "served the valid entry without waiting");
        release.notify_one();
        assert_eq!(refresher.await.unwrap(), Ok(Some(2)));
        let after = cache
            .get_or_fill("key", || 0, || async { Fill::Ok(Some((4, None))) })
            .await;
        assert_eq!(after, Ok(Some(2)), "the read replaced the entry");
    }

    #[tokio::test]
    async fn a_read_again_that_finds_nothing_ends_the_entry() {
        let cache: TtlCache<&'static str, u32> = TtlCache::new(Duration::from_millis(200), 8);
        cache
            .get_or_fill("key", || 0, || async { Fill::Ok(Some((1, None))) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        // A credential revoked by another process is refused as soon as it is read again.
        assert_eq!(
            cache.get_or_fill("key", || 0, || async { Fill::Ok(None) }).await,
            Ok(None)
        );
        let next = cache
            .get_or_fill("key", || 0, || async { Fill::Ok(Some((5, None))) })
            .await;
        assert_eq!(next, Ok(Some(5)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_read_once() {
        let cache = Arc::new(TtlCache::new(Duration::from_secs(60), 8));
        let reads = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (cache, reads) = (Arc::clone(&cache), Arc::clone(&reads));
            tasks.spawn(async move {
                cache
                    .get_or_fill(
                        "key",
                        || 0,
                        || async {
                            reads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Fill::Ok(Some((7, None)))
                        },
                    )
                    .await
            });
        }
        while let Some(result) = tasks.join_next().await {
            assert_eq!(result.unwrap(), Ok(Some(7)));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_full_cache_drops_dead_entries_and_never_grows_past_its_capacity() {
        let cache: TtlCache<u32, u32> = TtlCache::new(Duration::from_millis(500), 4);
        for key in 0..4 {
            cache
                .get_or_fill(key, || 0, || async { Fill::Ok(Some((key, None))) })
                .await
                .unwrap();
        }
        // Full of live entries: the next key is answered but not kept.
        let answered = cache.get_or_fill(9, || 0, || async { Fill::Ok(Some((9, None))) }).await;
        assert_eq!(answered, Ok(Some(9)));
        assert_eq!(cache.len(), 4);
        tokio::time::sleep(Duration::from_millis(600)).await;
        cache
            .get_or_fill(10, || 0, || async { Fill::Ok(Some((10, None))) })
            .await
            .unwrap();
        assert_eq!(cache.len(), 1, "the expired entries were dropped for the new one");
    }

    #[test]
    fn page_keys_separate_users_and_sessions() {
        let principal = |user_id, session_id| Principal {
            user_id,
            email: String::new(),
            name: String::new(),
            is_admin: false,
            scopes: auth::Scopes::all(),
            credential: Credential::Session {
                session_id,
                csrf_token: String::new(),
            },
            ip: None,
        };
        let page =
            |user_id, session_id| PageKey::for_credential(&principal(user_id, session_id), "page", String::new());
        assert_ne!(page(1, 1), page(2, 1));
        assert_ne!(page(1, 1), page(1, 2));
        assert_eq!(
            PageKey::for_user(&principal(1, 1), "page", String::new()),
            PageKey::for_user(&principal(1, 2), "page", String::new())
        );
        assert_ne!(
            PageKey::for_user(&principal(1, 1), "page", String::new()),
            PageKey::for_user(&principal(2, 1), "page", String::new())
        );
    }
}
