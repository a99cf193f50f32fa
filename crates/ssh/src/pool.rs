//! Persistent SSH connections: one per (server, user), shared by every channel opened
//! to that account, with at most `max_channels_per_connection` channels open at once
//! (OpenSSH's `MaxSessions` is 10 by default; more are queued, not refused).
//!
//! A connection authenticates with a key held in memory and accepts the server only
//! if it presents a pinned host key. Keepalives detect dead peers; a connection
//! that closed is replaced by a new one the next time a channel is needed, and
//! connections left unused for `idle_timeout` are closed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, AuthResult, Handle, Msg};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelOpenFailure};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{DisplayDuration, SshError};
use crate::keys::{ClientKey, HostKey};
use crate::transport::QuickAckStream;

/// How connections are made and used.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// How long resolving, connecting, the SSH handshake and authentication may each take.
    pub connect_timeout: Duration,
    /// How often to send a keepalive when the server has been silent.
    pub keepalive_interval: Duration,
    /// How many unanswered keepalives mean the connection is dead.
    pub keepalive_max: usize,
    /// How many channels may be open at once on one connection. OpenSSH refuses more
    /// than its `MaxSessions` (10 by default); further channels wait for a free slot.
    pub max_channels_per_connection: usize,
    /// How long a command may take to stop after SIGTERM before it gets SIGKILL (the
    /// `--kill-after` of `timeout`).
    pub kill_grace: Duration,
    /// How long an unused connection stays open.
    pub idle_timeout: Duration,
    /// How many bytes of each stream's end a [`crate::StepReport`] keeps.
    pub output_tail_bytes: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 3,
            max_channels_per_connection: 10,
            kill_grace: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10 * 60),
            output_tail_bytes: 64 * 1024,
        }
    }
}

/// One account on one server, with the key to log in and the pinned host keys.
#[derive(Clone)]
pub struct Target {
    /// A host name or IP address.
    pub host: String,
    pub port: u16,
    /// The account to log in as, such as `root` or `brokeforge`.
    pub user: String,
    pub client_key: ClientKey,
    /// The host keys the server may present; any other key is refused.
    pub host_keys: Vec<HostKey>,
}

impl Target {
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        client_key: ClientKey,
        host_keys: Vec<HostKey>,
    ) -> Target {
        Target {
            host: host.into(),
            port,
            user: user.into(),
            client_key,
            host_keys,
        }
    }

    /// `host:port`, with brackets around IPv6 addresses.
    pub fn address(&self) -> String {
        address(&self.host, self.port)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("address", &self.address())
            .field("user", &self.user)
            .field("client_key", &self.client_key)
            .field("host_keys", &self.host_keys)
            .finish()
    }
}

fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Which host keys a connection accepts.
#[derive(Clone, Debug)]
pub enum HostKeyPolicy {
    /// Only a key whose key data matches one of these.
    Pinned(Vec<HostKey>),
    /// Any key, which is returned to the caller to pin. Only for the first contact
    /// at bootstrap, through [`SshPool::learn_host_key`]; such connections are never
    /// pooled.
    LearnOnce,
}

/// Checks the server's host key against the policy and remembers what it presented.
struct ClientHandler {
    policy: HostKeyPolicy,
    presented: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, server_key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        // Host certificates are refused: BrokeForge pins keys, not authorities.
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            return Ok(false);
        };
        *self.presented.lock().expect("host key lock") = Some(key.clone());
        Ok(match &self.policy {
            HostKeyPolicy::Pinned(pinned) => pinned.iter().any(|pinned| pinned.matches(key)),
            HostKeyPolicy::LearnOnce => true,
        })
    }
}

/// An authenticated connection and its channel slots.
pub(crate) struct Connection {
    handle: Handle<ClientHandler>,
    channels: Arc<Semaphore>,
    max_channels: usize,
}

impl Connection {
    pub(crate) fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    fn is_idle(&self) -> bool {
        self.channels.available_permits() == self.max_channels
    }
}

/// A session channel and the slot it occupies; dropping it frees the slot.
pub(crate) struct PooledChannel {
    channel: Channel<Msg>,
    connection: Arc<Connection>,
    slot: OwnedSemaphorePermit,
}

impl PooledChannel {
    /// The channel, its connection, and the slot to hold until the channel closed.
    pub(crate) fn into_parts(self) -> (Channel<Msg>, Arc<Connection>, OwnedSemaphorePermit) {
        (self.channel, self.connection, self.slot)
    }
}

/// Connections by (host, port, user).
#[derive(Clone, Hash, PartialEq, Eq)]
struct PoolKey {
    host: String,
    port: u16,
    user: String,
}

/// The pooled connection of one account, made at most once at a time.
struct PoolEntry {
    /// The client key and pinned host keys the connection was made with.
    credentials: String,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
    last_used: Mutex<Instant>,
}

/// Persistent connections to managed servers. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct SshPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    config: PoolConfig,
    entries: Mutex<HashMap<PoolKey, Arc<PoolEntry>>>,
}

impl Default for SshPool {
    fn default() -> Self {
        SshPool::new(PoolConfig::default())
    }
}

impl SshPool {
    pub fn new(config: PoolConfig) -> SshPool {
        SshPool {
            inner: Arc::new(PoolInner {
                config,
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// How many accounts have a pooled connection (open or being made).
    pub fn connection_count(&self) -> usize {
        self.inner.entries.lock().expect("pool lock").len()
    }

    /// Closes the pooled connection to `target`'s account, if any. Channels in use
    /// keep it alive until they finish.
    pub fn forget(&self, target: &Target) {
        self.inner.entries.lock().expect("pool lock").remove(&pool_key(target));
    }

    /// Connects once to learn the host key the server presents, proves that the
    /// account accepts `client_key`, and disconnects. This is the only way to connect
    /// without a pinned key: use it when pinning at bootstrap, then pin the result.
    pub async fn learn_host_key(
        &self,
        host: &str,
        port: u16,
        user: &str,
        client_key: &ClientKey,
    ) -> Result<HostKey, SshError> {
        let (handle, host_key) = connect(
            host,
            port,
            user,
            client_key,
            HostKeyPolicy::LearnOnce,
            &self.inner.config,
        )
        .await?;
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "host key learned", "en")
            .await;
        Ok(host_key)
    }

    /// Opens a session channel to `target`, connecting or reconnecting when needed and
    /// waiting for a free channel slot.
    pub(crate) async fn open_channel(&self, target: &Target) -> Result<PooledChannel, SshError> {
        let entry = self.entry(target);
        let mut refusals = 0u32;
        let mut broken_connections = 0u32;
        loop {
            let connection = self.connected(&entry, target).await?;
            let slot = Arc::clone(&connection.channels)
                .acquire_owned()
                .await
                .expect("channel slots are never closed");
            *entry.last_used.lock().expect("pool lock") = Instant::now();
            match connection.handle.channel_open_session().await {
                Ok(channel) => {
                    return Ok(PooledChannel {
                        channel,
                        connection,
                        slot,
                    });
                }
                Err(russh::Error::ChannelOpenFailure(reason)) => {
                    // OpenSSH frees a closed channel's session slot lazily, so an open
                    // right after a close can find all MaxSessions slots taken: wait
                    // briefly and retry (2, 4, 8, ... ms, at most 50 ms, about 5 s in all).
                    refusals += 1;
                    if refusals > 100 {
                        return Err(SshError::ConnectionLost {
                            address: target.address(),
                            step_index: None,
                            command: None,
                            reason: format!(
                                "the server keeps refusing to open a channel ({})",
                                describe_open_failure(&reason)
                            ),
                        });
                    }
                    drop(slot);
                    let backoff = 2u64.saturating_pow(refusals).min(50);
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                }
                Err(error) => {
                    // The connection broke: forget it and reconnect once.
                    discard(&entry, &connection).await;
                    broken_connections += 1;
                    if broken_connections > 1 {
                        return Err(SshError::ConnectionLost {
                            address: target.address(),
                            step_index: None,
                            command: None,
                            reason: format!("could not open a channel: {error}"),
                        });
                    }
                }
            }
        }
    }

    /// Forgets `connection` if it is still the pooled one for `target`.
    pub(crate) async fn discard_connection(&self, target: &Target, connection: &Arc<Connection>) {
        let entry = self
            .inner
            .entries
            .lock()
            .expect("pool lock")
            .get(&pool_key(target))
            .cloned();
        if let Some(entry) = entry {
            discard(&entry, connection).await;
        }
    }

    /// The pool entry of `target`'s account, replacing one made with other
    /// credentials and closing connections that were idle too long.
    fn entry(&self, target: &Target) -> Arc<PoolEntry> {
        let credentials = credentials(target);
        let idle_timeout = self.inner.config.idle_timeout;
        let mut entries = self.inner.entries.lock().expect("pool lock");
        entries.retain(|_, entry| {
            let recently_used = entry.last_used.lock().expect("pool lock").elapsed() < idle_timeout;
            let busy = entry
                .connection
                .try_lock()
                .map(|connection| connection.as_ref().is_some_and(|connection| !connection.is_idle()))
                .unwrap_or(true);
            recently_used || busy
        });
        let key = pool_key(target);
        if let Some(entry) = entries.get(&key)
            && entry.credentials == credentials
        {
            return Arc::clone(entry);
        }
        let entry = Arc::new(PoolEntry {
            credentials,
            connection: tokio::sync::Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
        });
        entries.insert(key, Arc::clone(&entry));
        entry
    }

    /// The entry's open connection, made now if there is none or it closed.
    async fn connected(&self, entry: &PoolEntry, target: &Target) -> Result<Arc<Connection>, SshError> {
        let mut slot = entry.connection.lock().await;
        if let Some(connection) = slot.as_ref()
            && !connection.is_closed()
        {
            return Ok(Arc::clone(connection));
        }
        *slot = None;
        let (handle, _host_key) = connect(
            &target.host,
            target.port,
            &target.user,
            &target.client_key,
            HostKeyPolicy::Pinned(target.host_keys.clone()),
            &self.inner.config,
        )
        .await?;
        let max_channels = self.inner.config.max_channels_per_connection.max(1);
        let connection = Arc::new(Connection {
            handle,
            channels: Arc::new(Semaphore::new(max_channels)),
            max_channels,
        });
        *slot = Some(Arc::clone(&connection));
        Ok(connection)
    }
}

async fn discard(entry: &PoolEntry, connection: &Arc<Connection>) {
    let mut slot = entry.connection.lock().await;
    if slot.as_ref().is_some_and(|pooled| Arc::ptr_eq(pooled, connection)) {
        *slot = None;
    }
}

fn pool_key(target: &Target) -> PoolKey {
    PoolKey {
        host: target.host.clone(),
        port: target.port,
        user: target.user.clone(),
    }
}

fn credentials(target: &Target) -> String {
    let mut credentials = target.client_key.fingerprint();
    for host_key in &target.host_keys {
        credentials.push(' ');
        credentials.push_str(&host_key.fingerprint());
    }
    credentials
}

fn describe_open_failure(reason: &ChannelOpenFailure) -> String {
    match reason {
        ChannelOpenFailure::AdministrativelyProhibited => "administratively prohibited".into(),
        ChannelOpenFailure::ConnectFailed => "connect failed, probably too many sessions".into(),
        ChannelOpenFailure::UnknownChannelType => "unknown channel type".into(),
        ChannelOpenFailure::ResourceShortage => "resource shortage".into(),
        ChannelOpenFailure::Other { code, reason } => format!("code {code}: {reason}"),
    }
}

/// Resolves, connects, checks the host key and authenticates.
async fn connect(
    host: &str,
    port: u16,
    user: &str,
    client_key: &ClientKey,
    policy: HostKeyPolicy,
    config: &PoolConfig,
) -> Result<(Handle<ClientHandler>, HostKey), SshError> {
    let address = address(host, port);
    let limit = config.connect_timeout;
    let unreachable = |reason: String| SshError::Unreachable {
        address: address.clone(),
        reason,
    };

    let resolved: Vec<SocketAddr> = match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Err(_) => {
            return Err(unreachable(format!(
                "resolving {host} took longer than {}",
                DisplayDuration(limit)
            )));
        }
        Ok(Err(error)) => return Err(unreachable(format!("cannot resolve {host} ({error})"))),
        Ok(Ok(addresses)) => addresses.collect(),
    };
    let mut last_problem = format!("{host} has no address");
    let mut stream = None;
    for socket_address in resolved {
        match tokio::time::timeout(limit, tokio::net::TcpStream::connect(socket_address)).await {
            Ok(Ok(connected)) => {
                stream = Some(connected);
                break;
            }
            Ok(Err(error)) => last_problem = describe_connect_error(&error),
            Err(_) => last_problem = format!("no answer within {}", DisplayDuration(limit)),
        }
    }
    let Some(stream) = stream else {
        return Err(unreachable(last_problem));
    };
    let stream = QuickAckStream::new(stream);

    let mut russh_config = client::Config {
        keepalive_interval: Some(config.keepalive_interval),
        keepalive_max: config.keepalive_max,
        nodelay: true,
        ..Default::default()
    };
    if let HostKeyPolicy::Pinned(pinned) = &policy {
        // Ask for the algorithms of the pinned keys, so that a server with several host
        // keys presents one that is pinned.
        let mut algorithms = Vec::new();
        for key in pinned {
            if !algorithms.contains(&key.algorithm()) {
                algorithms.push(key.algorithm());
            }
        }
        if !algorithms.is_empty() {
            russh_config.preferred.key = Cow::Owned(algorithms);
        }
    }
    let presented = Arc::new(Mutex::new(None));
    let handler = ClientHandler {
        policy: policy.clone(),
        presented: Arc::clone(&presented),
    };
    let handshake = tokio::time::timeout(limit, client::connect_stream(Arc::new(russh_config), stream, handler)).await;
    let presented_key = presented.lock().expect("host key lock").take();
    let mut handle = match handshake {
        Err(_) => {
            return Err(unreachable(format!(
                "the SSH handshake did not finish within {}",
                DisplayDuration(limit)
            )));
        }
        Ok(Err(error)) => {
            if let (HostKeyPolicy::Pinned(pinned), Some(key)) = (&policy, &presented_key)
                && !pinned.iter().any(|pinned| pinned.matches(key))
            {
                return Err(host_key_mismatch(&address, pinned, key));
            }
            return Err(unreachable(format!("the SSH handshake failed ({error})")));
        }
        Ok(Ok(handle)) => handle,
    };
    let host_key = match presented_key {
        Some(key) => HostKey::from_public_key(&key),
        None => return Err(unreachable("the server presented no host key".into())),
    };

    let key = PrivateKeyWithHashAlg::new(client_key.private_key(), None);
    match tokio::time::timeout(limit, handle.authenticate_publickey(user, key)).await {
        Ok(Ok(AuthResult::Success)) => Ok((handle, host_key)),
        Ok(Ok(_)) => Err(SshError::AuthRefused {
            address,
            user: user.to_owned(),
            key_fingerprint: client_key.fingerprint(),
        }),
        Ok(Err(error)) => Err(SshError::ConnectionLost {
            address,
            step_index: None,
            command: None,
            reason: format!("the connection broke during authentication ({error})"),
        }),
        Err(_) => Err(unreachable(format!(
            "authentication did not finish within {}",
            DisplayDuration(limit)
        ))),
    }
}

fn host_key_mismatch(address: &str, pinned: &[HostKey], presented: &PublicKey) -> SshError {
    let expected = if pinned.is_empty() {
        vec!["a pinned key (none is stored)".to_owned()]
    } else {
        pinned.iter().map(HostKey::fingerprint).collect()
    };
    SshError::HostKeyMismatch {
        address: address.to_owned(),
        expected,
        presented: HostKey::from_public_key(presented).fingerprint(),
    }
}

fn describe_connect_error(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "connection timed out".into(),
        std::io::ErrorKind::HostUnreachable => "host unreachable".into(),
        std::io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => error.to_string(),
    }
}
