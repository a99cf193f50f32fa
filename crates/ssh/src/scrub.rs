//! Secret scrubbing for output that arrives in chunks, and bounded output tails.
//!
//! A secret can be split across two chunks (`hun` + `ter2`), so a [`StreamScrubber`]
//! holds back the end of a chunk while it could still become a secret, and releases
//! it when the next chunk shows it cannot, or when the stream ends. The result is
//! the same as `brokeforge_core::scrub` on the whole text: at each position the
//! longest secret that starts there is replaced by `***`.

use std::sync::Arc;

use brokeforge_core::MASK;

/// The secrets of one plan, longest first.
#[derive(Debug, Default)]
pub(crate) struct SecretSet {
    secrets: Vec<Vec<u8>>,
    first_bytes: Vec<bool>,
    longest: usize,
}

impl SecretSet {
    /// Collects the non-empty, distinct secrets.
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> SecretSet {
        let mut secrets: Vec<Vec<u8>> = secrets
            .into_iter()
            .filter(|secret| !secret.is_empty())
            .map(|secret| secret.as_bytes().to_vec())
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let mut first_bytes = vec![false; 256];
        for secret in &secrets {
            first_bytes[usize::from(secret[0])] = true;
        }
        let longest = secrets.first().map_or(0, Vec::len);
        SecretSet {
            secrets,
            first_bytes,
            longest,
        }
    }

    /// Scrubs a complete text.
    pub(crate) fn scrub_all(&self, text: &[u8]) -> Vec<u8> {
        let mut scrubbed = Vec::with_capacity(text.len());
        self.scrub_into(text, true, &mut scrubbed);
        scrubbed
    }

    /// Scrubs `text` into `out` and returns how many bytes were consumed. Unless
    /// `complete`, it stops at the first position where the rest of `text` could be
    /// the beginning of a secret.
    fn scrub_into(&self, text: &[u8], complete: bool, out: &mut Vec<u8>) -> usize {
        if self.secrets.is_empty() {
            out.extend_from_slice(text);
            return text.len();
        }
        let mut position = 0;
        let mut copied_from = 0;
        while position < text.len() {
            if !self.first_bytes[usize::from(text[position])] {
                position += 1;
                continue;
            }
            let rest = &text[position..];
            if !complete
                && rest.len() < self.longest
                && self
                    .secrets
                    .iter()
                    .any(|secret| secret.len() > rest.len() && secret.starts_with(rest))
            {
                break;
            }
            match self.secrets.iter().find(|secret| rest.starts_with(secret)) {
                Some(secret) => {
                    out.extend_from_slice(&text[copied_from..position]);
                    out.extend_from_slice(MASK.as_bytes());
                    position += secret.len();
                    copied_from = position;
                }
                None => position += 1,
            }
        }
        out.extend_from_slice(&text[copied_from..position]);
        position
    }
}

/// Scrubs one output stream chunk by chunk.
#[derive(Debug)]
pub(crate) struct StreamScrubber {
    secrets: Arc<SecretSet>,
    held: Vec<u8>,
}

impl StreamScrubber {
    pub(crate) fn new(secrets: Arc<SecretSet>) -> StreamScrubber {
        StreamScrubber {
            secrets,
            held: Vec::new(),
        }
    }

    /// Scrubs `chunk` and returns what can be shown now.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        if self.held.is_empty() {
            let consumed = self.secrets.scrub_into(chunk, false, &mut out);
            self.held.extend_from_slice(&chunk[consumed..]);
        } else {
            let mut text = std::mem::take(&mut self.held);
            text.extend_from_slice(chunk);
            let consumed = self.secrets.scrub_into(&text, false, &mut out);
            text.drain(..consumed);
            self.held = text;
        }
        out
    }

    /// Ends the stream and returns what was held back, scrubbed.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        self.secrets.scrub_all(&held)
    }
}

/// The last `limit` bytes of a stream.
#[derive(Debug)]
pub(crate) struct Tail {
    limit: usize,
    bytes: Vec<u8>,
}

impl Tail {
    pub(crate) fn new(limit: usize) -> Tail {
        Tail {
            limit,
            bytes: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        // Trimming only when twice the limit is reached keeps pushes cheap.
        if self.bytes.len() > self.limit.saturating_mul(2).max(1) {
            let excess = self.bytes.len() - self.limit;
            self.bytes.drain(..excess);
        }
    }

    /// The tail as text. Invalid UTF-8 becomes U+FFFD, and a character cut at the
    /// start of the tail is dropped.
    pub(crate) fn to_text(&self) -> String {
        let start = self.bytes.len().saturating_sub(self.limit);
        let mut tail = &self.bytes[start..];
        if start > 0 {
            let continuation = tail
                .iter()
                .take(3)
                .take_while(|byte| (**byte & 0b1100_0000) == 0b1000_0000)
                .count();
            tail = &tail[continuation..];
        }
        String::from_utf8_lossy(tail).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(secrets: &[&str], chunks: &[&str]) -> String {
        let set = Arc::new(SecretSet::new(secrets.iter().copied()));
        let mut scrubber = StreamScrubber::new(set);
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(scrubber.push(chunk.as_bytes()));
        }
        out.extend(scrubber.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn secrets_split_across_chunks_are_masked() {
        assert_eq!(stream(&["hunter2"], &["pw=hun", "ter2!"]), "pw=***!");
        assert_eq!(stream(&["hunter2"], &["pw=h", "u", "n", "t", "e", "r", "2"]), "pw=***");
        assert_eq!(stream(&["hunter2"], &["pw=hunt"]), "pw=hunt");
        assert_eq!(stream(&["abc", "abcdef"], &["x abc", "def abc", "d"]), "x *** ***d");
        assert_eq!(stream(&[], &["nothing ", "secret"]), "nothing secret");
        assert_eq!(
            stream(&["line\nsecret"], &["multi\nline", "\nsecret\n"]),
            "multi\n***\n"
        );
    }

    /// Splitting a text into chunks anywhere gives what `brokeforge_core::scrub`
    /// gives for the whole text.
    #[test]
    fn chunked_scrubbing_equals_whole_text_scrubbing() {
        let secrets = ["ab", "abab", "bab", "pa$$ 'word", "ü"];
        let texts = [
            "abababab",
            "xxbabxx ab a b",
            "the pa$$ 'word is pa$$ 'wor",
            "ünï ü abü",
            "",
            "aaaaaaaaab",
        ];
        for text in texts {
            let expected = brokeforge_core::scrub(text, &secrets);
            let bytes = text.as_bytes();
            for first_cut in 0..=bytes.len() {
                for second_cut in first_cut..=bytes.len() {
                    let set = Arc::new(SecretSet::new(secrets));
                    let mut scrubber = StreamScrubber::new(set);
                    let mut out = scrubber.push(&bytes[..first_cut]);
                    out.extend(scrubber.push(&bytes[first_cut..second_cut]));
                    out.extend(scrubber.push(&bytes[second_cut..]));
                    out.extend(scrubber.finish());
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        expected,
                        "text {text:?} cut at {first_cut} and {second_cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn tails_keep_the_last_bytes_on_a_character_boundary() {
        let mut tail = Tail::new(4);
        for chunk in ["abc", "def", "ghi"] {
            tail.push(chunk.as_bytes());
        }
        assert_eq!(tail.to_text(), "fghi");
        let mut tail = Tail::new(4);
        tail.push("aaaé€".as_bytes());
        assert_eq!(tail.to_text(), "€");
    }
}
