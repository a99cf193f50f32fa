//! Sealing secrets at rest. Every secret column holds
//! `key_version (1 byte) || nonce (24 bytes) || XChaCha20-Poly1305 ciphertext`, with
//! associated data naming the row (e.g. `server_credentials:42:root`), so a sealed
//! value copied into another row does not open.
//!
//! The master key comes from `BROKEFORGE_MASTER_KEY` or from `master.key` (mode 0600)
//! in the data directory, created on first start. A check value sealed in the
//! database detects a wrong or replaced key before anything else runs.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, Zeroizing};

use crate::error::DbError;
use crate::pool::Db;

/// The file that holds the master key inside the data directory.
pub const MASTER_KEY_FILE_NAME: &str = "master.key";
/// The environment variable that may hold the master key instead of the file.
pub const MASTER_KEY_ENV: &str = "BROKEFORGE_MASTER_KEY";
const KEY_FILE_PREFIX: &str = "brokeforge-master-key-v1:";
const CURRENT_KEY_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const CHECK_SETTING: &str = "master_key_check";
const CHECK_PLAINTEXT: &[u8] = b"BrokeForge master key check";

/// Errors from loading a master key or opening a sealed value.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the master key in {source_name} is corrupt: {reason}. Restore it from your backup (sealed secrets cannot be read without it)."
    )]
    CorruptKey { source_name: String, reason: String },
    #[error("cannot read the master key file {path}: {reason}")]
    ReadKey { path: PathBuf, reason: String },
    #[error(
        "the master key file {0} is missing, but this database already holds sealed secrets. Restore master.key from your backup or set {MASTER_KEY_ENV}."
    )]
    MissingKey(PathBuf),
    #[error(
        "the master key does not match this database (was master.key replaced, or {MASTER_KEY_ENV} changed?). Use the key this database was created with."
    )]
    WrongKey,
    #[error("cannot write the master key to {path}: {reason}")]
    WriteKey { path: PathBuf, reason: String },
    #[error(
        "a sealed value could not be opened: it was tampered with, belongs to another row, or was sealed with another key"
    )]
    OpenFailed,
    #[error("a sealed value uses key version {0}, which this control plane does not have")]
    UnknownKeyVersion(u8),
    #[error("the system random generator failed: {0}")]
    Random(String),
}

/// The 32-byte key that seals every secret. It never prints.
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// Generates a new random key.
    pub fn generate() -> Result<MasterKey, SealError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|error| SealError::Random(error.to_string()))?;
        Ok(MasterKey { bytes })
    }

    /// Parses a key from its text form: 64 hex digits, optionally with the file prefix.
    pub fn parse(text: &str, source_name: &str) -> Result<MasterKey, SealError> {
        let corrupt = |reason: &str| SealError::CorruptKey {
            source_name: source_name.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        let hex_digits = trimmed.strip_prefix(KEY_FILE_PREFIX).unwrap_or(trimmed);
        if hex_digits.len() != 64 {
            return Err(corrupt("expected 64 hexadecimal digits"));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_digits, bytes.as_mut()).map_err(|_| corrupt("not hexadecimal"))?;
        Ok(MasterKey { bytes })
    }

    /// The key's text form, as written to `master.key`.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{KEY_FILE_PREFIX}{}\n", hex::encode(self.bytes.as_ref())))
    }

    /// Reads the key from the environment or from `data_dir/master.key`. Returns
    /// `None` when neither exists, so the caller decides whether creating one is safe.
    pub fn load(data_dir: &Path) -> Result<Option<MasterKey>, SealError> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return MasterKey::parse(&text, MASTER_KEY_ENV).map(Some);
        }
        let path = data_dir.join(MASTER_KEY_FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                MasterKey::parse(&text, &path.display().to_string()).map(Some)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(SealError::ReadKey {
                path,
                reason: error.to_string(),
            }),
        }
    }

    /// Writes the key to `data_dir/master.key` with mode 0600, atomically, refusing
    /// to replace an existing file.
    pub fn write_new_file(&self, data_dir: &Path) -> Result<PathBuf, SealError> {
        let path = data_dir.join(MASTER_KEY_FILE_NAME);
        let temporary = data_dir.join(format!(".{MASTER_KEY_FILE_NAME}.{}", std::process::id()));
        let fail = |reason: String| SealError::WriteKey {
            path: path.clone(),
            reason,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|error| fail(error.to_string()))?;
        let written = file
            .write_all(self.to_file_text().as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600)))
            .and_then(|()| std::fs::hard_link(&temporary, &path));
        let _ = std::fs::remove_file(&temporary);
        written.map_err(|error| fail(error.to_string()))?;
        Ok(path)
    }
}

/// Seals and opens secrets with the master key, and signs values (such as callback
/// URLs) with a key derived from it.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    signing_key: Zeroizing<[u8; 32]>,
}

/// What the signing key is derived for; a new purpose gets a new label.
const SIGNING_KEY_LABEL: &[u8] = b"brokeforge signing key v1";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// A sealer for the given master key.
    pub fn new(key: &MasterKey) -> Sealer {
        let cipher = XChaCha20Poly1305::new_from_slice(key.bytes.as_ref()).expect("the master key is 32 bytes");
        let mut derivation = <HmacSha256 as hmac::KeyInit>::new_from_slice(key.bytes.as_ref()).expect("any key length");
        hmac::Mac::update(&mut derivation, SIGNING_KEY_LABEL);
        let mut signing_key = Zeroizing::new([0u8; 32]);
        signing_key.copy_from_slice(&hmac::Mac::finalize(derivation).into_bytes());
        Sealer { cipher, signing_key }
    }

    /// The HMAC-SHA256 of `message` under the signing key.
    pub fn sign(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.signing_mac();
        hmac::Mac::update(&mut mac, message);
        hmac::Mac::finalize(mac).into_bytes().into()
    }

    /// Whether `signature` is the signature of `message`, compared in constant time.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        let mut mac = self.signing_mac();
        hmac::Mac::update(&mut mac, message);
        hmac::Mac::verify_slice(mac, signature).is_ok()
    }

    fn signing_mac(&self) -> HmacSha256 {
        <HmacSha256 as hmac::KeyInit>::new_from_slice(self.signing_key.as_ref()).expect("any key length")
    }

    /// Encrypts `plaintext`, binding it to `aad` (the row it belongs to).
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|error| SealError::Random(error.to_string()))?;
        let ciphertext = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::OpenFailed)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(CURRENT_KEY_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts a value sealed for `aad`. The plaintext is wiped when dropped.
    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::OpenFailed)?;
        if version != CURRENT_KEY_VERSION {
            return Err(SealError::UnknownKeyVersion(version));
        }
        if rest.len() < NONCE_LEN {
            return Err(SealError::OpenFailed);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::OpenFailed)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::OpenFailed)
    }

    /// Seals a UTF-8 secret.
    pub fn seal_str(&self, plaintext: &str, aad: &str) -> Result<Vec<u8>, SealError> {
        self.seal(plaintext.as_bytes(), aad)
    }

    /// Opens a value sealed with [`Sealer::seal_str`].
    pub fn open_string(&self, sealed: &[u8], aad: &str) -> Result<Zeroizing<String>, SealError> {
        let mut bytes = self.open(sealed, aad)?;
        let text = String::from_utf8(std::mem::take(&mut *bytes)).map_err(|error| {
            let mut bytes = error.into_bytes();
            bytes.zeroize();
            SealError::OpenFailed
        })?;
        Ok(Zeroizing::new(text))
    }
}

/// Proves `key` matches the database, or on a new database adopts a key: the
/// given one, or a new one written to `data_dir/master.key`. Load the key with
/// [`MasterKey::load`] *before* opening the database, so a corrupt key file stops
/// the control plane before anything is created.
pub async fn verify_master_key(db: &Db, key: Option<MasterKey>, data_dir: &Path) -> Result<Sealer, DbError> {
    let existing_check: Option<Vec<u8>> = crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM control_plane_settings WHERE name = $1")
            .bind(CHECK_SETTING)
            .fetch_optional(pool)
            .await?
    });
    let key = match (key, &existing_check) {
        (Some(key), _) => key,
        (None, Some(_)) => {
            return Err(SealError::MissingKey(data_dir.join(MASTER_KEY_FILE_NAME)).into());
        }
        (None, None) => {
            let key = MasterKey::generate()?;
            let path = key.write_new_file(data_dir)?;
            tracing::info!(path = %path.display(), "created a new master key: back it up, sealed secrets cannot be read without it");
            key
        }
    };
    let sealer = Sealer::new(&key);
    if existing_check.is_none() {
        let check = sealer.seal(CHECK_PLAINTEXT, CHECK_SETTING)?;
        crate::with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO control_plane_settings (name, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(CHECK_SETTING)
            .bind(&check)
            .bind(crate::clock::now())
            .execute(pool)
            .await?;
        });
    }
    // Verify against what is stored now: another process may have raced this one.
    let stored: Vec<u8> = crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM control_plane_settings WHERE name = $1")
            .bind(CHECK_SETTING)
            .fetch_one(pool)
            .await?
    });
    let opened = sealer.open(&stored, CHECK_SETTING).map_err(|_| SealError::WrongKey)?;
    if opened.as_slice() != CHECK_PLAINTEXT {
        return Err(SealError::WrongKey.into());
    }
    Ok(sealer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&MasterKey::generate().unwrap())
    }

    #[test]
    fn signatures_verify_only_for_the_same_message_and_key() {
        let key = MasterKey::generate().unwrap();
        let sealer = Sealer::new(&key);
        let signature = sealer.sign(b"bootstrap:1:progress");
        assert!(sealer.verify_signature(b"bootstrap:1:progress", &signature));
        assert!(Sealer::new(&key).verify_signature(b"bootstrap:1:progress", &signature));
        assert!(!sealer.verify_signature(b"bootstrap:2:progress", &signature));
        assert!(!sealer.verify_signature(b"bootstrap:1:progress", &signature[..31]));
        assert!(!Sealer::new(&MasterKey::generate().unwrap()).verify_signature(b"bootstrap:1:progress", &signature));
    }

    #[test]
    fn sealed_values_open_only_with_the_same_row_and_key() {
        let sealer = sealer();
        let sealed = sealer
            .seal(b"-----BEGIN OPENSSH PRIVATE KEY-----", "server_credentials:1:root")
            .unwrap();
        assert_eq!(sealed[0], CURRENT_KEY_VERSION);
        assert!(!sealed.windows(5).any(|window| window == b"BEGIN"));
        let opened = sealer.open(&sealed, "server_credentials:1:root").unwrap();
        assert_eq!(opened.as_slice(), b"-----BEGIN OPENSSH PRIVATE KEY-----");
        assert!(matches!(
            sealer.open(&sealed, "server_credentials:2:root"),
            Err(SealError::OpenFailed)
        ));
        let other = self::sealer();
        assert!(matches!(
            other.open(&sealed, "server_credentials:1:root"),
            Err(SealError::OpenFailed)
        ));
    }

    #[test]
    fn tampered_or_truncated_values_are_refused() {
        let sealer = sealer();
        let mut sealed = sealer.seal(b"secret", "row").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(sealer.open(&sealed, "row"), Err(SealError::OpenFailed)));
        assert!(matches!(sealer.open(&[], "row"), Err(SealError::OpenFailed)));
        assert!(matches!(sealer.open(&[1, 2, 3], "row"), Err(SealError::OpenFailed)));
        assert!(matches!(
            sealer.open(&[9; 60], "row"),
            Err(SealError::UnknownKeyVersion(9))
        ));
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let sealer = sealer();
        assert_ne!(
            sealer.seal(b"same", "row").unwrap(),
            sealer.seal(b"same", "row").unwrap()
        );
    }

    #[test]
    fn key_text_round_trips_and_corrupt_text_is_refused() {
        let key = MasterKey::generate().unwrap();
        let text = key.to_file_text();
        let parsed = MasterKey::parse(&text, "test").unwrap();
        assert_eq!(parsed.bytes.as_ref(), key.bytes.as_ref());
        assert_eq!(format!("{key:?}"), "MasterKey(***)");
        let error = MasterKey::parse("brokeforge-master-key-v1:zz", "master.key").unwrap_err();
        assert!(error.to_string().contains("master.key is corrupt"), "{error}");
        let error = MasterKey::parse(&"g".repeat(64), "env").unwrap_err();
        assert!(error.to_string().contains("not hexadecimal"), "{error}");
    }

    #[test]
    fn key_files_are_private_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate().unwrap();
        let path = key.write_new_file(dir.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = MasterKey::generate().unwrap();
        assert!(second.write_new_file(dir.path()).is_err());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }
}
