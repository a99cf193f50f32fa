//! OpenSSH public keys in `authorized_keys` format (`TYPE BASE64 [COMMENT]`),
//! validated: one line, a known key type, a base64 body that decodes and names that
//! same type inside, a printable comment, and never a private key.
//!
//! The bootstrap script installs the control plane's public keys with this type, and
//! the application reads the server's host keys and deploy key, as the script
//! reports them, with it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The key types BrokeForge accepts.
pub const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
];

/// Why a text is not an [`OpenSshPublicKey`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum OpenSshPublicKeyError {
    #[error("this is a private key; give the public key (the .pub file) instead")]
    PrivateKey,
    #[error("a public key must be one line")]
    MultipleLines,
    #[error("a public key cannot contain control characters")]
    ControlCharacter,
    #[error("a public key can be at most {max} characters long")]
    TooLong { max: usize },
    #[error("expected a public key such as \"ssh-ed25519 AAAA... comment\"")]
    Malformed,
    #[error("unsupported key type {0:?}; use one of: ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa")]
    UnsupportedType(String),
    #[error("the key's base64 body does not decode")]
    InvalidBase64,
    #[error("the key's body is a {inside:?} key, not the {declared:?} key its type says")]
    TypeMismatch { declared: String, inside: String },
}

/// A validated OpenSSH public key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpenSshPublicKey {
    key_type: String,
    body: String,
    comment: Option<String>,
}

impl OpenSshPublicKey {
    /// The longest key line accepted (RSA 16384-bit keys fit).
    pub const MAX_LENGTH: usize = 8192;

    /// The key type, such as `ssh-ed25519`.
    pub fn key_type(&self) -> &str {
        &self.key_type
    }

    /// The comment, if any.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// `TYPE BASE64`, the part that identifies the key whatever its comment or
    /// options; an `authorized_keys` line holding it authorizes this key.
    pub fn key_material(&self) -> String {
        format!("{} {}", self.key_type, self.body)
    }

    /// The key as one `authorized_keys` line, without a newline.
    pub fn authorized_keys_line(&self) -> String {
        match &self.comment {
            Some(comment) => format!("{} {} {comment}", self.key_type, self.body),
            None => self.key_material(),
        }
    }

    fn validate(text: &str) -> Result<Self, OpenSshPublicKeyError> {
        if text.contains("PRIVATE KEY") {
            return Err(OpenSshPublicKeyError::PrivateKey);
        }
        let line = text.strip_suffix('\n').unwrap_or(text);
        let line = line.strip_suffix('\r').unwrap_or(line).trim();
        if line.contains(['\n', '\r']) {
            return Err(OpenSshPublicKeyError::MultipleLines);
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(OpenSshPublicKeyError::ControlCharacter);
        }
        if line.chars().count() > Self::MAX_LENGTH {
            return Err(OpenSshPublicKeyError::TooLong { max: Self::MAX_LENGTH });
        }
        let mut fields = line.splitn(3, [' ', '\t']);
        let (Some(key_type), Some(body)) = (fields.next(), fields.next()) else {
            return Err(OpenSshPublicKeyError::Malformed);
        };
        if body.is_empty() {
            return Err(OpenSshPublicKeyError::Malformed);
        }
        if !KEY_TYPES.contains(&key_type) {
            return Err(OpenSshPublicKeyError::UnsupportedType(
                key_type.chars().take(64).collect(),
            ));
        }
        let blob = decode_base64(body).ok_or(OpenSshPublicKeyError::InvalidBase64)?;
        let inside = blob_key_type(&blob).ok_or(OpenSshPublicKeyError::Malformed)?;
        if inside != key_type {
            return Err(OpenSshPublicKeyError::TypeMismatch {
                declared: key_type.to_owned(),
                inside: inside.chars().take(64).collect(),
            });
        }
        let comment = fields
            .next()
            .map(|comment| comment.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|comment| !comment.is_empty());
        Ok(OpenSshPublicKey {
            key_type: key_type.to_owned(),
            body: body.to_owned(),
            comment,
        })
    }
}

/// The type name a key blob starts with: a big-endian length, then that many bytes.
fn blob_key_type(blob: &[u8]) -> Option<String> {
    let length = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + length)?;
    String::from_utf8(name.to_vec()).ok()
}

/// Decodes standard, padded base64; `None` on any other character or length.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(byte: u8) -> Option<u32> {
        Some(match byte {
            b'A'..=b'Z' => u32::from(byte - b'A'),
            b'a'..=b'z' => u32::from(byte - b'a') + 26,
            b'0'..=b'9' => u32::from(byte - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.chunks(4);
    let last = chunks.len() - 1;
    for (index, chunk) in chunks.enumerate() {
        let padding = chunk.iter().rev().take_while(|byte| **byte == b'=').count();
        if padding > 2 || (padding > 0 && index != last) {
            return None;
        }
        let mut group = 0u32;
        for byte in &chunk[..4 - padding] {
            group = (group << 6) | value(*byte)?;
        }
        group <<= 6 * padding as u32;
        let decoded = [(group >> 16) as u8, (group >> 8) as u8, group as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

impl FromStr for OpenSshPublicKey {
    type Err = OpenSshPublicKeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        OpenSshPublicKey::validate(text)
    }
}

impl fmt::Display for OpenSshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.authorized_keys_line())
    }
}

impl Serialize for OpenSshPublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.authorized_keys_line())
    }
}

impl<'de> Deserialize<'de> for OpenSshPublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(decode_base64("aA==").unwrap(), b"h");
        assert_eq!(decode_base64("aGk"), None);
        assert_eq!(decode_base64("a=Gk"), None);
        assert_eq!(decode_base64("aGk=aGk="), None);
        assert_eq!(decode_base64("a$k="), None);
    }
}
