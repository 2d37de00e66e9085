//! docs/bench.md, from the bench's figures.

use super::coldstart::{Row, answers, median};
use super::requests::Call;
use super::{Args, BARE, SDK_FLOOR, arranged};

/// The targets of issue 24: first poll against the bare Lambda's, first answer and warm
/// invocations against the floor making the same first request, and the zip.
const POLL: f64 = 1.3;
const FIRST: f64 = 1.2;
const WARM_RATIO: f64 = 1.15;
const ZIP: f64 = 3.0;

/// Where the generated part of docs/bench.md ends: `make bench` keeps what follows it.
pub const NOTES_MARKER: &str = "<!-- notes: written by hand, kept by make bench -->";
use crate::common;

/// docs/bench.md: the cold-start rows, the calls' DynamoDB requests, the targets missed.
pub fn report(args: &Args, rows: &[Row], calls: &[Call], load: &str) -> String {
    use std::fmt::Write;
    let (cpus, model) = common::machine();
    let mut out = String::new();
    let floor_of = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| median(&r.cold_ms))
    };
    let (floor, sdk_floor) = (floor_of(BARE), floor_of(SDK_FLOOR));
    let _ = writeln!(out, "# Benchmark figures\n");
    let _ = writeln!(
        out,
        "Measured {} on {cpus} CPUs ({model}), load average before the report {load}, with `{}`.",
        common::now_utc(),
        args.command
    );
    let _ = writeln!(
        out,
        "Release binaries built natively (`cargo build --release`, the workspace profile as is: \
         opt-level \"z\", fat LTO, 1 codegen unit, symbols stripped, \
         panic=abort, as cargo-lambda builds). Cold start: spawn to the first \
         `GET /2018-06-01/runtime/invocation/next`, {} runs each in rounds (every binary once a round), SDK clients built. Peak: VmHWM \
         after one invocation of the sample event in `events/` (highest of the runs). Zip: the \
         binary as `bootstrap`, deflated (python zipfile). Rows \
         `get-order + …`: the same binary with one more setting, to show what its cold start \
         is made of (bench/src/bench/coldstart.rs, `variants`). `sdk-floor`: the bare Lambda plus the \
         shared SDK configuration and a DynamoDB client, built like the functions — what \
         any of them pays before its own code.\n",
        args.runs
    );
    let _ = writeln!(
        out,
        "| function | cold start median ms | min ms | max ms | × floor | × SDK floor | peak RSS MiB | binary MiB | zip MiB | answers |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for row in rows {
        let median = median(&row.cold_ms);
        let _ = writeln!(
            out,
            "| {}{} | {:.2} | {:.2} | {:.2} | {} | {} | {:.1} | {:.2} | {:.2} | {} |",
            row.name,
            match row.name.as_str() {
                BARE => " (floor)",
                SDK_FLOOR => " (SDK floor)",
                _ => "",
            },
            median,
            row.cold_ms.first().copied().unwrap_or(f64::NAN),
            row.cold_ms.last().copied().unwrap_or(f64::NAN),
            floor.map_or("".into(), |f| format!("{:.2}", median / f)),
            sdk_floor.map_or("".into(), |f| format!("{:.2}", median / f)),
            row.peak_kib.last().copied().unwrap_or(0) as f64 / 1024.0,
            mib(row.binary_bytes),
            mib(row.zip_bytes),
            answers(&row.answers),
        );
    }
    let _ = writeln!(out, "\n## Cold start as a caller feels it\n");
    let _ = writeln!(
        out,
        "First answer: spawn to the response of the first invocation (the sample event), what \
         the first caller waits for beyond Lambda's own placement. Warm: the {warm} invocations \
         after it in the same process, each from the poll's answer to the response. Floor \
         (`dynamo-floor`): the SDK floor making one DynamoDB request per invocation, the \
         operation this function made first, run right after each of its runs. Targets (issue \
         24): first poll ≤ {POLL} × the bare Lambda's, first answer ≤ {FIRST} × the floor's, \
         warm ≤ {WARM_RATIO} × the floor's, zip ≤ {ZIP} MiB, peak ≤ 32 MiB. Medians.\n",
        warm = super::WARM
    );
    let _ = writeln!(
        out,
        "| function | first poll ms | × bare | first answer ms | floor first answer ms (operation) | × floor | warm ms | floor warm ms | × floor warm | zip MiB | peak MiB |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    // Why a function's answer misses its floor's: the requests its sample made (the floor
    // makes one), or, with one request, the time of its own code around it.
    let requests_of = |name: &str| {
        calls
            .iter()
            .filter(|(_, binary, _)| binary == name)
            .max_by_key(|(label, _, _)| label.ends_with("(its sample)"))
            .map(|(_, _, run)| {
                run.dynamo
                    .iter()
                    .map(|r| r.operation.as_str())
                    .collect::<Vec<_>>()
            })
    };
    let answer_cause = |name: &str, mine: f64, floor: f64| match requests_of(name) {
        Some(ops) if ops.len() > 1 => format!(
            "its sample makes {} DynamoDB requests ({}), the floor 1",
            ops.len(),
            grouped(&ops)
        ),
        _ => format!(
            "one DynamoDB request at most, as the floor; {:.2} ms more of the rest of its work \
             (other services' calls, parsing, checking, rendering: \"Where the time goes\" below)",
            mine - floor
        ),
    };
    let poll_cause = |cold: f64| match (floor, sdk_floor) {
        (Some(bare), Some(sdk)) => format!(
            "the SDK floor alone is {:.2} ×; {:.2} ms more of its own start (settings, clients and, where it has them, secrets read before the first poll)",
            sdk / bare,
            cold - sdk
        ),
        _ => "no floor measured".into(),
    };
    let mut caller_misses = Vec::new();
    for row in rows
        .iter()
        .filter(|r| r.name != BARE && r.name != SDK_FLOOR && !r.name.contains(" + "))
    {
        let cold = median(&row.cold_ms);
        let first = median(&row.first_ms);
        let warm = median(&row.warm_ms);
        let floor_first = median(&row.floor_first_ms);
        let floor_warm = median(&row.floor_warm_ms);
        let poll_ratio = floor.map_or(f64::NAN, |f| cold / f);
        let first_ratio = first / floor_first;
        let zip = mib(row.zip_bytes);
        let peak = row.peak_kib.last().copied().unwrap_or(0) as f64 / 1024.0;
        let _ = writeln!(
            out,
            "| {} | {cold:.2} | {poll_ratio:.2} | {first:.2} | {} | {} | {warm:.2} | {} | {} | {zip:.2} | {peak:.1} |",
            row.name,
            match &row.floor_operation {
                Some(op) => format!("{floor_first:.2} ({op})"),
                None => "— (no DynamoDB request)".into(),
            },
            if first_ratio.is_nan() {
                "—".into()
            } else {
                format!("{first_ratio:.2}")
            },
            if floor_warm.is_nan() {
                "—".into()
            } else {
                format!("{floor_warm:.2}")
            },
            if floor_warm.is_nan() {
                "—".into()
            } else {
                format!("{:.2}", warm / floor_warm)
            },
        );
        if first_ratio > FIRST {
            caller_misses.push(format!(
                "{}: first answer {first_ratio:.2} × the floor's (target ≤ {FIRST} ×): {}",
                row.name,
                answer_cause(&row.name, first, floor_first)
            ));
        }
        let warm_ratio = warm / floor_warm;
        if warm_ratio > WARM_RATIO {
            caller_misses.push(format!(
                "{}: warm {warm_ratio:.2} × the floor's (target ≤ {WARM_RATIO} ×): {}",
                row.name,
                answer_cause(&row.name, warm, floor_warm)
            ));
        }
        if poll_ratio > POLL {
            caller_misses.push(format!(
                "{}: first poll {poll_ratio:.2} × the bare Lambda's (target ≤ {POLL} ×): {}",
                row.name,
                poll_cause(cold)
            ));
        }
        if zip > ZIP {
            caller_misses.push(format!(
                "{}: zip {zip:.2} MiB (target ≤ {ZIP} MiB)",
                row.name
            ));
        }
        if peak > 32.0 {
            caller_misses.push(format!(
                "{}: peak {peak:.1} MiB (target ≤ 32 MiB)",
                row.name
            ));
        }
    }
    if caller_misses.is_empty() {
        let _ = writeln!(out, "\nEvery function meets the four targets.");
    } else {
        let _ = writeln!(out);
        for miss in &caller_misses {
            let _ = writeln!(out, "- miss: {miss}");
        }
        if let (Some(bare), Some(sdk)) = (floor, sdk_floor) {
            let _ = writeln!(
                out,
                "\nWhat stands in the way: the SDK floor alone (configuration and a DynamoDB \
                 client, no code of ours) reaches its first poll at {:.2} × the bare Lambda's \
                 {bare:.2} ms, so a {POLL} × target leaves {:.2} ms for everything a function adds \
                 (its other clients, the authenticator, the settings); a function that makes \
                 more than one request before it answers (create-order: the cart lookup, then \
                 the transaction; fulfill-orders: a read, a transaction, an update) cannot \
                 answer within 1.2 × of one request; and every ratio here has a denominator of \
                 a few milliseconds, which the machine's load (above) moves by as much.",
                sdk / bare,
                (POLL * bare - sdk).max(0.0),
            );
        }
    }
    let _ = writeln!(
        out,
        "\n## DynamoDB requests per API call\n\n\
         Counted at the emulator (scripts/emulator_bench.py, `/_bench/requests`), one fresh process per \
         call; the HTTP status is the emulator's (400: a condition or transaction that did not \
         hold, as intended). ConsumedCapacity is not reported: the handlers do not ask for it \
         (no ReturnConsumedCapacity), and moto's figures are placeholders anyway (a fixed 0.5 \
         on every UpdateItem, fixed 0.5/1.0 on Get/Put/Query/Delete only when asked, none for \
         TransactWriteItems), not computed from item sizes.\n"
    );
    let _ = writeln!(
        out,
        "| API call | function | requests | operations (HTTP status) | answer |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | --- | --- |");
    for (label, binary, run) in calls {
        let operations = run
            .dynamo
            .iter()
            .map(|r| format!("{} ({})", r.operation, r.status))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| {label} | {binary} | {} | {operations} | {}{} |",
            run.dynamo.len(),
            run.answer.summary(),
            if run.answer.is_success() {
                ""
            } else {
                " (not a success)"
            },
        );
    }
    let _ = writeln!(out, "\n## Against the targets\n");
    let mut misses = Vec::new();
    // The `+` rows are analysis (see `variants`), not functions as deployed.
    for row in rows
        .iter()
        .filter(|r| r.name != BARE && r.name != SDK_FLOOR && !r.name.contains(" + "))
    {
        let ratio = floor.map(|f| median(&row.cold_ms) / f).unwrap_or(f64::NAN);
        if ratio.is_nan() || ratio > POLL {
            misses.push(format!(
                "{}: median cold start {:.2} × the bare Lambda's (target ≤ {POLL} ×): {}",
                row.name,
                ratio,
                poll_cause(median(&row.cold_ms))
            ));
        }
        let peak = row.peak_kib.last().copied().unwrap_or(0) as f64 / 1024.0;
        if peak >= 32.0 {
            misses.push(format!(
                "{}: peak {peak:.1} MiB (target < 32 MiB)",
                row.name
            ));
        }
    }
    // The one-request target is the API's (docs/BRIEF: each API call one request on its
    // success path); consumers and Stripe's and Shippo's webhooks do more by design.
    for (label, _, run) in calls
        .iter()
        .filter(|(_, binary, _)| !arranged::FUNCTIONS.contains(&binary.as_str()))
    {
        let n = run.dynamo.iter().filter(|r| !r.cart_lookup).count();
        if n != 1 {
            let ops: Vec<&str> = run
                .dynamo
                .iter()
                .filter(|r| !r.cart_lookup)
                .map(|r| r.operation.as_str())
                .collect();
            misses.push(format!(
                "{label}: {n} DynamoDB requests besides the cart lookup (target 1): {}",
                grouped(&ops)
            ));
        }
    }
    if let (Some(bare), Some(sdk)) = (floor, sdk_floor) {
        let _ = writeln!(
            out,
            "The SDK floor (a bare Lambda that also builds the shared SDK configuration and a \
             DynamoDB client before its first poll, as every function must) starts in {sdk:.2} ms, \
             {:.2} × the bare Lambda's {bare:.2} ms: that much of the target is the AWS SDK's \
             before any of our code runs.\n",
            sdk / bare
        );
    }
    if misses.is_empty() {
        let _ = writeln!(out, "Every figure meets its target.");
    } else {
        for miss in &misses {
            let _ = writeln!(out, "- miss: {miss}");
        }
    }
    let _ = writeln!(
        out,
        "\n## Reproduce\n\n\
         ```sh\n\
         make bench                 # BENCH_RUNS=15 cold starts per binary; AWS_ENDPOINT_URL: use that emulator\n\
         make bench BENCH_ONLY=get-order BENCH_RUNS=3 BENCH_OUT=/tmp/bench.md   # one function (the floors always run)\n\
         make bench BENCH_ONLY=stripe-webhook BENCH_RUNS=2 BENCH_PROFILE=quick BENCH_OUT=/tmp/bench.md   # no LTO: seconds of linking\n\
         ```\n\n\
         It builds the {} functions and `bench/`'s three floors (bare, SDK, SDK plus one DynamoDB request) with one \
         `cargo build --release -p functions -p orders-bench --no-default-features --features sdk-floor --bins` (native, \
         not cross-compiled; a no-op on a warm target), starts scripts/emulator.py, localstripe and the Shippo stand-in \
         through scripts/with-emulator.sh unless `AWS_ENDPOINT_URL` is set, provisions fresh tables from template.yaml \
         (one stack for the first {}, and one per function for the others, arranged as `make invoke` arranges it: \
         bench/src/bench/arranged.rs), and runs `bench/` (its source says how each figure is taken), which overwrites \
         this file. The figures depend on the machine and on its load: compare rows of one run, not runs.",
        super::FUNCTIONS.len() + arranged::FUNCTIONS.len(),
        super::FUNCTIONS.len(),
    );
    out
}

/// `GetItem, 3 × Query`: runs of the same operation counted.
fn grouped(ops: &[&str]) -> String {
    let mut runs: Vec<(&str, usize)> = Vec::new();
    for op in ops {
        match runs.last_mut() {
            Some((last, n)) if last == op => *n += 1,
            _ => runs.push((op, 1)),
        }
    }
    runs.iter()
        .map(|(op, n)| match n {
            1 => op.to_string(),
            n => format!("{n} × {op}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
