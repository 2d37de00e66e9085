//! The functions' log subscriber (each `main` calls [`init`] first): `tracing`'s formatter on stdout, one JSON object a
//! line when Lambda's log format is JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`), plain text
//! otherwise; no timestamps (CloudWatch stamps every line) and no targets.
//!
//! What `lambda_runtime::tracing::init_default_subscriber` did, without its
//! `EnvFilter`: that filter's regular-expression engine (for span and field filters
//! nobody here sets) was 0.13–0.16 MiB of every zip (`docs/bench.md`, "Zip size"). The level is
//! `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`; `RUST_LOG` may also name
//! levels per target (`info,aws_smithy_runtime=debug`).

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber for the process, from its environment. Call once, first.
pub fn init() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let filter = log_filter(var("AWS_LAMBDA_LOG_LEVEL"), var("RUST_LOG"));
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let lines = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(std::io::stdout);
    let registry = tracing_subscriber::registry().with(filter);
    // Err: a subscriber is installed already (a test, the local stack); it stays.
    let _ = if json {
        registry.with(lines.json()).try_init()
    } else {
        registry.with(lines).try_init()
    };
}

/// Lambda's level (`TRACE` … `ERROR`, `FATAL` read as `ERROR`) wins over `RUST_LOG`'s
/// directives; anything unreadable is `info`.
fn log_filter(lambda_level: Option<String>, rust_log: Option<String>) -> Targets {
    let info = Targets::new().with_default(LevelFilter::INFO);
    if let Some(level) = lambda_level {
        let level = if level.trim().eq_ignore_ascii_case("fatal") {
            Ok(LevelFilter::ERROR)
        } else {
            LevelFilter::from_str(level.trim())
        };
        return level.map_or(info, |level| Targets::new().with_default(level));
    }
    rust_log
        .and_then(|directives| Targets::from_str(directives.trim()).ok())
        .unwrap_or(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(lambda: Option<&str>, rust_log: Option<&str>) -> String {
        log_filter(lambda.map(String::from), rust_log.map(String::from)).to_string()
    }

    #[test]
    fn the_level_is_lambdas_else_rust_logs_else_info() {
        assert_eq!(of(None, None), "info");
        assert_eq!(of(Some("DEBUG"), Some("trace")), "debug");
        assert_eq!(of(Some("FATAL"), None), "error");
        assert_eq!(of(None, Some("warn")), "warn");
        assert_eq!(
            of(None, Some("info,aws_smithy_runtime=debug")),
            "aws_smithy_runtime=debug,info"
        );
        assert_eq!(of(Some("loud"), None), "info");
        assert_eq!(of(None, Some("orders=loud")), "info");
    }
}
