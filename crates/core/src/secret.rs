//! `Secret<T>`: a value that never prints. Its `Debug` and `Display` show `***`, it
//! does not implement `Serialize`, and its memory is wiped on drop. The only way to
//! read it is the explicit [`Secret::expose`] call, which keeps every read greppable.
//! [`scrub`] removes known secret values from text a server sent back.

use std::fmt;

use zeroize::Zeroize;

/// The text every secret prints as.
pub const MASK: &str = "***";

/// A value that must not reach logs, events, error messages, the UI or API responses.
#[derive(Clone)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a value as a secret.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// Reads the secret value. Call sites are the audit trail: keep them few.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Secret::new(value.to_owned())
    }
}

impl From<Vec<u8>> for Secret<Vec<u8>> {
    fn from(value: Vec<u8>) -> Self {
        Secret::new(value)
    }
}

/// Replaces every occurrence of every secret in `text` with `***`.
///
/// Where secrets overlap, the longest one that starts at a position wins, so a secret
/// that contains another one is masked whole. Empty secrets are ignored.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|secret| !secret.is_empty()).collect();
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    let mut scrubbed = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(next) = rest.chars().next() {
        match secrets.iter().find(|secret| rest.starts_with(**secret)) {
            Some(secret) => {
                scrubbed.push_str(MASK);
                rest = &rest[secret.len()..];
            }
            None => {
                scrubbed.push(next);
                rest = &rest[next.len_utf8()..];
            }
        }
    }
    scrubbed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_masked_in_debug_and_display() {
        let secret = Secret::from("hunter2");
        assert_eq!(format!("{secret}"), MASK);
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(format!("{:?}", Some(&secret)), "Some(***)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn scrub_masks_every_occurrence_of_every_secret() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("no secrets here", &["hunter2"], "no secrets here"),
            ("pw=hunter2 again hunter2", &["hunter2"], "pw=*** again ***"),
            ("token abcdef and abc", &["abc", "abcdef"], "token *** and ***"),
            ("hunter2hunter2", &["hunter2"], "******"),
            ("ünïcödé sécret ü", &["sécret"], "ünïcödé *** ü"),
            ("multi\nline\nsecret", &["line\nsecret"], "multi\n***"),
            ("empty secrets are ignored", &[""], "empty secrets are ignored"),
            ("", &["x"], ""),
            ("no secrets at all", &[], "no secrets at all"),
        ];
        for (text, secrets, expected) in cases {
            assert_eq!(scrub(text, secrets), *expected, "text {text:?}");
        }
    }
}
