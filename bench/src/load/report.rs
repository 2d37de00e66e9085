//! The figures and the report (docs/load.md).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::Settings;
use super::checks::Check;
use super::clients::{Sample, Traffic};

/// One phase of the run, as reported.
pub struct Phase {
    pub title: &'static str,
    /// What was done, in a sentence or two.
    pub about: String,
    pub traffic: Traffic,
    /// The emulator's `/_bench/timings` for the load window.
    pub emulator: Value,
    /// How long the pipeline took to catch up after the load window.
    pub settled_after: Duration,
    /// Webhook lag of the healthy receiver (arrival − the event's `occurred_at`), ms.
    pub webhook_lag_ms: Vec<f64>,
    /// Deliveries to the healthy receiver during the window, per second.
    pub webhooks_per_second: f64,
    /// Figures particular to the phase (the fault's, mostly).
    pub notes: Vec<String>,
    pub checks: Vec<Check>,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Across every DynamoDB operation: the p50 of the time requests waited for the
/// emulator's lock, and of the time moto worked on them (ms).
pub fn emulator_wait_and_service(timings: &Value) -> (f64, f64) {
    let all = |name: &str| {
        sorted(
            timings["operations"]
                .as_object()
                .into_iter()
                .flat_map(|ops| ops.values())
                .flat_map(|t| t[name].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_f64())
                .collect(),
        )
    };
    (
        percentile(&all("wait_ms"), 50.0),
        percentile(&all("service_ms"), 50.0),
    )
}

/// The emulator's DynamoDB work in a window: how many requests it served, and the mean
/// of moto's work per request (the lock held), in ms.
pub fn emulator_requests_and_mean_service(timings: &Value) -> (usize, f64) {
    let service: Vec<f64> = timings["operations"]
        .as_object()
        .into_iter()
        .flat_map(|ops| ops.values())
        .flat_map(|t| t["service_ms"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_f64())
        .collect();
    let mean = service.iter().sum::<f64>() / service.len().max(1) as f64;
    (service.len(), mean)
}

/// The healthy receiver's lag for the events of `order_ids`.
pub fn webhook_lag_ms(
    deliveries: &[super::receivers::Delivery],
    order_ids: &std::collections::HashSet<&str>,
) -> Vec<f64> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    deliveries
        .iter()
        .filter(|d| {
            d.id.split_once(':')
                .is_some_and(|(order, _)| order_ids.contains(order))
        })
        .filter_map(|d| {
            let occurred = OffsetDateTime::parse(d.occurred_at.as_deref()?, &Rfc3339).ok()?;
            let lag = d.arrived.duration_since(SystemTime::from(occurred)).ok()?;
            Some(ms(lag))
        })
        .collect()
}

pub fn render(
    settings: &Settings,
    phases: &[Phase],
    overall: &[Check],
    context: &Context,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Load and fault runs\n");
    let profile = match settings
        .dev_binary
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|p| p.to_str())
    {
        Some("release") => "built with the release profile (fat LTO)",
        Some("debug") => "built with the debug profile",
        _ => "as built",
    };
    let _ = writeln!(
        out,
        "Measured {} on {} CPUs ({}), load average before the run {}, with `{}`: {} clients, \
         loopback only, against `orders-dev` (the process `make dev` runs: every handler, and the \
         event pipeline in-process) {profile}, and scripts/emulator.py (moto; DynamoDB requests \
         serialised) started by the run itself. The load driver (bench/src/load/, a debug build) \
         shares the CPUs with both.\n",
        context.date,
        context.cpus,
        context.cpu_model,
        context.load_average,
        settings.command,
        settings.clients,
    );
    let _ = writeln!(
        out,
        "Each client is a customer with its own carts and keep-alive connection; it loops: \
         create an order (`Idempotency-Key`), read it, then one of five paths — cancel it \
         (owner); confirm (admin) and cancel (admin); confirm, ship, deliver; confirm, ship; \
         confirm — then read its history and list its orders. A 503 is retried after its \
         `Retry-After`, a create with the same key.\n"
    );

    let passed = phases
        .iter()
        .flat_map(|p| &p.checks)
        .chain(overall)
        .filter(|c| c.passed)
        .count();
    let total = phases.iter().map(|p| p.checks.len()).sum::<usize>() + overall.len();
    let _ = writeln!(out, "**Checks: {passed} of {total} passed.**\n");

    let _ = writeln!(out, "## Throughput\n");
    let _ = writeln!(
        out,
        "| phase | window s | requests | requests/s | orders | orders/s | 5xx | webhooks delivered/s | webhook lag p50 / p99 / max ms | pipeline caught up after s | CPU % emulator / orders-dev / driver |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"
    );
    for phase in phases {
        let t = &phase.traffic;
        let seconds = t.elapsed.as_secs_f64();
        let lag = sorted(phase.webhook_lag_ms.clone());
        let _ = writeln!(
            out,
            "| {}{} | {:.1} | {} | {:.1} | {} | {:.1} | {} | {:.1} | {:.0} / {:.0} / {:.0} | {:.1} | {} |",
            phase.title,
            if t.capped { " (ran out of carts)" } else { "" },
            seconds,
            t.samples.len(),
            t.samples.len() as f64 / seconds,
            t.placed.len(),
            t.placed.len() as f64 / seconds,
            t.samples.iter().filter(|s| s.status >= 500).count(),
            phase.webhooks_per_second,
            percentile(&lag, 50.0),
            percentile(&lag, 99.0),
            lag.last().copied().unwrap_or(f64::NAN),
            phase.settled_after.as_secs_f64(),
            t.cpu
                .iter()
                .map(|c| c.map_or("?".to_string(), |c| format!("{:.0}", c * 100.0)))
                .collect::<Vec<_>>()
                .join(" / "),
        );
    }
    let _ = writeln!(
        out,
        "\nWindow: from the first request to the last answer (each client finishes the order it \
         is on). Webhooks delivered/s: what the healthy receiver got during the window (any \
         phase's events). Webhook lag: its arrival time minus the event's `occurred_at`, over \
         the phase's events. CPU: the share of one CPU each process used \
         over the window (the emulator is one Python process: near 100 % it is the limit).\n"
    );

    for phase in phases {
        let _ = writeln!(out, "## {}\n\n{}\n", capitalised(phase.title), phase.about);
        for note in &phase.notes {
            let _ = writeln!(out, "- {note}");
        }
        if !phase.notes.is_empty() {
            let _ = writeln!(out);
        }
        latency_table(&mut out, &phase.traffic.samples);
        emulator_table(&mut out, &phase.emulator);
        let _ = writeln!(out, "Checks:\n");
        for check in &phase.checks {
            write_check(&mut out, check);
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "## Across the whole run\n");
    for check in overall {
        write_check(&mut out, check);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "## Reproduce\n\n\
         ```sh\n\
         make load                  # LOAD_CLIENTS=8 LOAD_SECONDS=20 (steady phase); LOAD_FAULT_SECONDS=20\n\
         make load LOAD_PROFILE=dev LOAD_CLIENTS=2 LOAD_SECONDS=5 LOAD_FAULT_SECONDS=12  # CI's reduced form\n\
         ```\n\n\
         `LOAD_PROFILE=dev` runs the debug build of `orders-dev` (no release build) and writes \
         its report to a temporary file instead of this one. A change still missing 60 s after \
         its phase is counted late, and waited for as long as the queues' settings allow \
         (the longest VisibilityTimeout, for a receive whose answer was lost, plus a webhook \
         claim's lease); only what is missing after that is lost, and fails.\n\n\
         It builds `orders-dev` with `cargo build --release -p orders-dev` (the workspace profile, \
         fat LTO: a few minutes the first time) and the driver `load` (bench/src/load/), which \
         starts its own scripts/emulator.py on a free loopback port (so that it can pause it) \
         and `orders-dev` on another, seeds carts and stock, subscribes a catch-all queue to the \
         bus and a webhook receiver of its own, runs the phases above, checks, and overwrites \
         this file. It exits non-zero if a check fails. Everything is bounded: the carts seeded \
         (`--max-orders`), each phase's window, every wait (a deadline, polling), and the whole \
         run (`--deadline`). The figures depend on the machine and its load: compare phases of \
         one run, not runs."
    );
    out
}

/// What the report says besides the phases.
pub struct Context {
    pub date: String,
    pub cpus: String,
    pub cpu_model: String,
    pub load_average: String,
}

fn write_check(out: &mut String, check: &Check) {
    let _ = writeln!(
        out,
        "- {} {}: {}",
        if check.passed { "pass" } else { "**FAIL**" },
        check.name,
        check.detail
    );
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Per endpoint: requests, answers, and latency percentiles.
fn latency_table(out: &mut String, samples: &[Sample]) {
    let mut by_endpoint: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for sample in samples {
        by_endpoint.entry(sample.endpoint).or_default().push(sample);
    }
    let _ = writeln!(
        out,
        "| API endpoint | requests | answers | p50 ms | p99 ms | max ms |"
    );
    let _ = writeln!(out, "| --- | ---: | --- | ---: | ---: | ---: |");
    for endpoint in ENDPOINT_ORDER {
        let Some(samples) = by_endpoint.get(endpoint) else {
            continue;
        };
        let latencies = sorted(samples.iter().map(|s| ms(s.latency)).collect());
        let mut answers: BTreeMap<String, usize> = BTreeMap::new();
        for s in samples {
            let answer = match &s.code {
                Some(code) if s.status >= 400 => format!("{} {code}", s.status),
                _ if s.status == 0 => "no answer".to_string(),
                _ => s.status.to_string(),
            };
            *answers.entry(answer).or_default() += 1;
        }
        let answers: Vec<String> = answers.iter().map(|(a, n)| format!("{a} ×{n}")).collect();
        let _ = writeln!(
            out,
            "| {endpoint} | {} | {} | {:.1} | {:.1} | {:.1} |",
            samples.len(),
            answers.join(", "),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies.last().copied().unwrap_or(f64::NAN),
        );
    }
    let _ = writeln!(out);
}

const ENDPOINT_ORDER: [&str; 8] = [
    "create", "get", "confirm", "ship", "deliver", "cancel", "history", "list",
];

/// Per DynamoDB operation, the emulator's own durations (scripts/emulator_bench.py).
fn emulator_table(out: &mut String, timings: &Value) {
    let Some(operations) = timings["operations"].as_object() else {
        return;
    };
    let _ = writeln!(
        out,
        "DynamoDB at the emulator in the same window (every caller: API, pipeline, driver): \
         `total` is arrival to response ready, of which `wait` queueing for the emulator's \
         DynamoDB lock and `service` moto's work.\n"
    );
    let _ = writeln!(
        out,
        "| DynamoDB operation | requests | total p50 ms | total p99 ms | wait p50 ms | wait p99 ms | service p50 ms | service p99 ms |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut rows: Vec<(&String, &Value)> = operations.iter().collect();
    rows.sort_by_key(|(_, t)| std::cmp::Reverse(t["total_ms"].as_array().map_or(0, Vec::len)));
    for (operation, timing) in rows {
        let series = |name: &str| {
            sorted(
                timing[name]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default(),
            )
        };
        let (total, wait, service) = (series("total_ms"), series("wait_ms"), series("service_ms"));
        let _ = writeln!(
            out,
            "| {operation} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            total.len(),
            percentile(&total, 50.0),
            percentile(&total, 99.0),
            percentile(&wait, 50.0),
            percentile(&wait, 99.0),
            percentile(&service, 50.0),
            percentile(&service, 99.0),
        );
    }
    let _ = writeln!(out);
}
