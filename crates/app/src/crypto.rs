//! Small cryptographic helpers shared by sessions, API tokens and setup links:
//! random tokens, SHA-256 and constant-time comparison.

use sha2::{Digest, Sha256};

/// `bytes` random bytes from the system generator, as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = zeroize::Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(buffer.as_mut_slice()).expect("the system random generator works");
    hex::encode(buffer.as_slice())
}

/// The SHA-256 digest of `text`.
pub fn sha256(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left.iter().zip(right).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_have_the_requested_size_and_differ() {
        let first = random_hex(32);
        assert_eq!(first.len(), 64);
        assert_ne!(first, random_hex(32));
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_eq!(sha256("abc").len(), 32);
    }
}
