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
    /// Changes made during the window that the bus carried, per second.
    pub events_per_second: f64,
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
         event pipeline in-process, with `make dev`'s Stripe, Shippo and mail settings) \
         {profile}, scripts/emulator.py (moto: DynamoDB requests serialised, SES, SQS, \
         EventBridge), localstripe (scripts/stripe_standin.py) and the Shippo stand-in \
         (scripts/shippo_standin.py), all started by the run itself. The load driver \
         (bench/src/load/, a debug build) shares the CPUs with them.\n",
        context.date,
        context.cpus,
        context.cpu_model,
        context.load_average,
        settings.command,
        settings.clients,
    );
    let _ = writeln!(
        out,
        "Each client is a customer (its token carries its email) with its own carts and \
         keep-alive connection; it loops: create an order (`Idempotency-Key`), read it, then \
         one of seven paths, in turn — \
         **returned** (twice in the turn): paid by card at localstripe as Stripe.js would \
         (card, confirm) and confirmed by Stripe's webhook, shipped with a Shippo label \
         (`POST …/shipments`) once fulfillment has reserved the stock, delivered by the \
         carrier's report (the Shippo stand-in's tracking control, then its `track_updated` \
         webhook), invoice read, one cable returned (`POST …/returns` by the owner, approved \
         with a return label by an admin, carried back by the carrier's report, received by \
         the warehouse with `restock`: refunded 10.00 at Stripe), credit note read; \
         **paid, cancelled**: paid, then cancelled by an admin, which refunds it in full; \
         **labelled**: paid, shipped with a label, delivered by the carrier, invoice read as \
         JSON and as PDF; **partly refunded**: paid, refunded 25.00 by an admin \
         (`POST …/refunds`), shipped and delivered through the status route, invoice and \
         credit note read; by bank transfer, **owner cancelled** while pending, \
         **confirmed, cancelled** (admin, admin), and **delivered** (admin confirms, \
         fulfillment ships and delivers through the status route), invoice read — then \
         read its history and list its orders. What is asynchronous (the payment's webhook, \
         the reservation, the carrier's report reaching the order, an invoice or credit \
         note being issued) is polled every 0.5 s with a deadline (`wait: …` rows, \
         `invoice` answered 404 until issued); a payment not confirmed 15 s after the charge \
         gets Stripe's event again from the driver, and a carrier report not answered 2xx is \
         sent again, as Stripe and Shippo retry (localstripe and the stand-in send once). A \
         503 is retried after its `Retry-After`, and a 409 `concurrent_change` (the order \
         changed between the API's read and its write: \"retry\", says the OpenAPI document) \
         after 0.5 s, with the same `Idempotency-Key`; a label request answered 409 \
         `label_in_progress` (another attempt's claim on the purchase) is sent again every \
         2 s until its step's deadline. Requests \
         to the stand-ins (`localstripe: …`, `Shippo stand-in: …`) are the clients' too, \
         and counted in the requests.\n"
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
        "| phase | window s | requests | requests/s | orders | orders/s | 5xx | events/s on the bus | webhooks delivered/s | webhook lag p50 / p99 / max ms | caught up after s (books + pipeline) | CPU % {} |",
        super::stack::PROCESSES.join(" / ")
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"
    );
    for phase in phases {
        let t = &phase.traffic;
        let seconds = t.elapsed.as_secs_f64();
        let lag = sorted(phase.webhook_lag_ms.clone());
        let _ = writeln!(
            out,
            "| {}{} | {:.1} | {} | {:.1} | {} | {:.1} | {} | {:.1} | {:.1} | {:.0} / {:.0} / {:.0} | {:.1} | {} |",
            phase.title,
            if t.capped { " (ran out of carts)" } else { "" },
            seconds,
            t.samples.len(),
            t.samples.len() as f64 / seconds,
            t.placed.len(),
            t.placed.len() as f64 / seconds,
            t.samples.iter().filter(|s| s.status >= 500).count(),
            phase.events_per_second,
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
         is on, to its end). Requests: every request of the clients, to the API and to the \
         stand-ins, polls included. Events/s on the bus: the changes made during the window \
         (any phase's orders: one event each, every change of an order) that the bus \
         carried, per second of the window — the pipeline's throughput. Webhooks delivered/s: \
         what the healthy receiver got during the window (any phase's events). Webhook lag: \
         its arrival time minus the event's `occurred_at`, over the phase's events (a \
         payment's change is stamped with its Stripe event's `created`, in whole seconds: up \
         to 1 s early, so its lag reads up to 1 s long). Caught \
         up after: from the end of the window until the refunds, credit notes and invoices \
         were all there, then every change on the bus and at the receiver. CPU: the share \
         of one CPU each process used over the window (the emulator is one Python process: \
         near 100 % it is the limit).\n"
    );
    whole_run_table(&mut out, phases);

    for phase in phases {
        let _ = writeln!(out, "## {}\n\n{}\n", capitalised(phase.title), phase.about);
        let _ = writeln!(out, "- {}", paths_taken(&phase.traffic));
        for note in &phase.notes {
            let _ = writeln!(out, "- {note}");
        }
        let _ = writeln!(out);
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
         starts its own scripts/emulator.py on a free loopback port (so that it can pause it), \
         localstripe and the Shippo stand-in on others, and `orders-dev` on another with `make \
         dev`'s settings for them (STRIPE_API_BASE and the local Stripe keys, SHIPPO_API_URL, \
         SHIPPO_API_TOKEN, SHIPPO_WEBHOOK_TOKEN, SHIPPO_ADDRESS_FROM; mail through SES on the \
         emulator from local mode's sender), registers localstripe's and the stand-in's \
         webhooks to it as scripts/dev.sh does, seeds carts and stock, subscribes a catch-all \
         queue to the bus and a webhook receiver of its own, runs the phases above, checks, \
         and overwrites this file; every process it started is killed at its end. It exits non-zero if a check fails. Everything is bounded: the carts seeded \
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
    let others = by_endpoint
        .keys()
        .filter(|e| !ENDPOINT_ORDER.contains(*e))
        .copied();
    let rows: Vec<&str> = ENDPOINT_ORDER.iter().copied().chain(others).collect();
    for endpoint in rows {
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

/// The rows of the latency tables, in the order of an order's life: the API's
/// endpoints, the clients' waits, then the stand-ins. (Anything else follows.)
const ENDPOINT_ORDER: [&str; 25] = [
    "create",
    "get",
    "confirm",
    "ship",
    "deliver",
    "cancel",
    "refund",
    "ship with label",
    "return",
    "approve return",
    "receive return",
    "invoice",
    "invoice pdf",
    "credit notes",
    "history",
    "list",
    "Stripe webhook (resent)",
    "wait: paid",
    "wait: reserved",
    "wait: delivered",
    "wait: return delivered",
    "localstripe: card",
    "localstripe: confirm",
    "localstripe: events",
    "Shippo stand-in: carrier report",
];

/// How many orders took each path, and what the driver sent again for them.
fn paths_taken(traffic: &Traffic) -> String {
    let mut paths: BTreeMap<String, usize> = BTreeMap::new();
    for order in &traffic.placed {
        *paths.entry(format!("{:?}", order.path)).or_default() += 1;
    }
    let paths: Vec<String> = paths.iter().map(|(p, n)| format!("{p} ×{n}")).collect();
    let stripe: u32 = traffic.placed.iter().map(|o| o.stripe_resends).sum();
    let shippo: u32 = traffic.placed.iter().map(|o| o.shippo_resends).sum();
    format!(
        "Orders by path: {}. Stripe events the driver sent again (Stripe's retry): {stripe}; \
         carrier reports sent again (Shippo's retry): {shippo}.",
        paths.join(", ")
    )
}

/// One latency table over every phase but the one with the emulator stopped: more
/// requests per endpoint, for steadier percentiles.
fn whole_run_table(out: &mut String, phases: &[Phase]) {
    let samples: Vec<Sample> = phases
        .iter()
        .filter(|p| p.title != "emulator stopped")
        .flat_map(|p| p.traffic.samples.iter().cloned())
        .collect();
    let _ = writeln!(
        out,
        "Every request of the phases without the emulator stopped (steady load, hanging \
         webhook receiver, poison record), together:\n"
    );
    latency_table(out, &samples);
}

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
