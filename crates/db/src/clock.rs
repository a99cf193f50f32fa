//! Time helpers shared by the repositories and the queue, so every timestamp is
//! taken and truncated the same way on both backends.

use chrono::{DateTime, SubsecRound, Utc};

/// The current time, truncated to microseconds (PostgreSQL's precision), so a
/// value read back equals the value written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}
