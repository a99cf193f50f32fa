//! Where `brokeforge login` keeps the control plane's URL and the token: a JSON
//! file in `$BROKEFORGE_CONFIG_DIR`, `$XDG_CONFIG_HOME/brokeforge` or
//! `~/.config/brokeforge`, readable by its owner only (0600, in a 0700 directory).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::Context;

/// The stored credentials.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub url: String,
    pub token: String,
}

/// The directory the credentials file lives in.
pub fn directory() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("BROKEFORGE_CONFIG_DIR")
        && !dir.trim().is_empty()
    {
        return Ok(PathBuf::from(dir));
    }
    if let Ok(dir) = std::env::var("XDG_CONFIG_HOME")
        && !dir.trim().is_empty()
    {
        return Ok(PathBuf::from(dir).join("brokeforge"));
    }
    let home = std::env::var("HOME").context("HOME is not set; set BROKEFORGE_CONFIG_DIR")?;
    Ok(PathBuf::from(home).join(".config").join("brokeforge"))
}

/// The credentials file.
pub fn path() -> anyhow::Result<PathBuf> {
    Ok(directory()?.join("credentials.json"))
}

/// Reads the stored credentials, if any.
pub fn load() -> anyhow::Result<Option<Credentials>> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!("{} is corrupt; run `brokeforge login` again", path.display())
        })?)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the credentials with mode 0600, replacing the file atomically.
pub fn save(credentials: &Credentials) -> anyhow::Result<PathBuf> {
    let dir = directory()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))?;
    let path = dir.join("credentials.json");
    let temporary = dir.join(format!(".credentials.json.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(serde_json::to_string_pretty(credentials)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Forgets the stored credentials.
pub fn remove() -> anyhow::Result<bool> {
    match std::fs::remove_file(path()?) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error.into()),
    }
}
