//! What both drivers (`bench` and `load`) need: the machine a report was taken on, and
//! tokens for the functions under test.

use std::time::Duration;

/// The CPU count and model, for a report's heading.
pub fn machine() -> (String, String) {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|l| l.split_once(':')))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    (cpus, model)
}

/// The 1, 5 and 15 minute load averages: how busy the machine was besides the run.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn now_utc() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// A day-long HS256 bearer token, as the functions under test verify them.
pub fn token(secret: &str, sub: &str, scope: &str) -> String {
    orders::auth::issue_hs256_token(
        secret.as_bytes(),
        sub,
        scope,
        Duration::from_secs(24 * 60 * 60),
    )
}
