//! Exponential backoff between attempts of a failed job.

use std::time::Duration;

/// How long a failed job waits before its next attempt: `base * 2^(attempt-1)`,
/// capped at `max`, plus up to 10 % jitter so retries of many jobs spread out.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(5),
            max: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The delay before the attempt that follows failed attempt number `attempt` (1-based).
    /// `jitter_seed` is any number that differs between jobs (the job id works).
    pub fn delay_after(&self, attempt: u32, jitter_seed: u64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exponent);
        let capped = raw.min(self.max);
        let jitter_fraction = (jitter_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as u32; // 0..1023
        let jitter = capped / 10 * jitter_fraction / 1024;
        capped + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_attempt_and_stop_at_the_cap() {
        let backoff = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        let delays: Vec<u64> = (1..=8)
            .map(|attempt| backoff.delay_after(attempt, 0).as_secs())
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        for seed in 0..100 {
            let delay = backoff.delay_after(3, seed);
            assert!(
                delay >= Duration::from_secs(4) && delay <= Duration::from_millis(4400),
                "{delay:?}"
            );
        }
        assert_eq!(backoff.delay_after(1000, 7).as_secs() / 60, 1);
    }
}
