//! `make bench`: for every function's release binary (and two floors: a bare Rust Lambda,
//! and the same with our SDK configuration and a DynamoDB client) its cold start, peak
//! memory after one invocation, binary and zip size; and the DynamoDB requests each API
//! call makes, counted at the emulator.
//!
//! Each binary runs as Lambda runs it (`runner`): a fresh process, against a fake Lambda
//! Runtime API, handed the function's sample event from `events/` (real ids and a minted
//! token put in; `requests`). First one call per API operation, counting its DynamoDB
//! requests (`requests`); then rounds of cold starts (`coldstart`); then the report
//! (`report`).
//!
//! Needs `AWS_ENDPOINT_URL` (an emulator started by scripts/emulator.py, which counts
//! DynamoDB requests at `/_bench/requests`); `make bench` runs the `bench` binary
//! (src/bin/bench.rs, which reads `Args` from its command line) under
//! scripts/with-emulator.sh.

pub mod arranged;
pub mod coldstart;
pub mod report;
pub mod requests;
pub mod runner;

use std::path::{Path, PathBuf};

use orders_tests::unique;

use crate::emulator::Counters;
use crate::{Error, common};
use requests::Ids;
use runner::Runner;

pub const BARE: &str = "bare-lambda";
/// The bare Lambda plus our SDK configuration and a DynamoDB client (bench/src/bin/sdk-floor.rs).
pub const SDK_FLOOR: &str = "sdk-floor";
/// The SDK floor that makes one DynamoDB request per invocation (bench/src/bin/dynamo-floor.rs).
pub const DYNAMO_FLOOR: &str = "dynamo-floor";
/// Warm invocations after each cold one, in the cold-start rounds.
pub const WARM: usize = 3;
/// The cold-start runs' order: webhooks after the orders they are about, the floor first.
/// These run on the bench's one stack; the newer functions, each on a stack arranged
/// for its sample, are listed in [`arranged::FUNCTIONS`].
pub const FUNCTIONS: [&str; 21] = [
    "create-order",
    "get-order",
    "list-orders",
    "update-order-status",
    "cancel-order",
    "get-order-history",
    "publish-events",
    "fulfill-orders",
    "create-webhook",
    "get-webhook",
    "list-webhooks",
    "list-webhook-deliveries",
    "deliver-webhooks",
    "delete-webhook",
    "request-erasure",
    "get-erasure",
    "export-customer-data",
    "erase-customer-data",
    "suppress-bounces",
    "sendgrid-events",
    "delete-suppression",
];
/// The samples' customer: the demo cart's owner.
pub const USER: &str = orders_dev::provision::DEMO_CART.1;
/// Stock of each product in the carts: more than any run orders.
const STOCK: u64 = 1_000_000;

/// What to run and where the report goes.
pub struct Args {
    /// Cold starts per binary.
    pub runs: usize,
    /// Where the functions' and floors' binaries are.
    pub bin_dir: PathBuf,
    pub out: Option<PathBuf>,
    /// Only these functions' rows (the floors always run).
    pub only: Option<Vec<String>>,
    /// What the report says it was made with.
    pub command: String,
    /// A command to run each binary under (e.g. `strace -f -tt -o /tmp/t`), for analysis.
    pub wrap: Vec<String>,
}

/// Tables, carts, stock and bus, named for this run.
struct Setup {
    table: String,
    carts: String,
    bus: String,
}

/// Creates the run's tables from `template` (as the local stack does), its carts (the
/// sample's, and one for each create of the per-call part) and stock, and its bus.
async fn provision(template: &Path, setup: &Setup) -> Result<(), Error> {
    use orders_dev::provision as p;

    let sdk = orders::adapters::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let template = orders_dev::template::Template::load(template)?;
    p::ensure_table(&dynamodb, &setup.table, &template.table("OrdersTable")?).await?;
    p::ensure_table(&dynamodb, &setup.carts, &p::carts_table_spec()).await?;
    let (sample_cart, _, lines) = p::DEMO_CART;
    let carts: Vec<(String, String)> = [sample_cart, "bench-nokey", "bench-cancel"]
        .into_iter()
        .map(|cart| (cart.to_string(), USER.to_string()))
        .collect();
    common::seed(&dynamodb, &setup.carts, &setup.table, &carts, lines, STOCK).await?;
    // The bus alone: no queue or rule (the functions only put events on it).
    orders_dev::pipeline::provision(
        &aws_sdk_sqs::Client::new(&sdk),
        &aws_sdk_eventbridge::Client::new(&sdk),
        &setup.bus,
        "",
        &[],
        &[],
    )
    .await?;
    Ok(())
}

/// The whole bench: setup, the per-call part, the cold-start rounds, the report (printed,
/// and written to `args.out`).
pub async fn run(args: &Args) -> Result<(), Error> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").map_err(|_| {
        "AWS_ENDPOINT_URL is not set: run `make bench` (it starts an emulator), or point it at one"
    })?;
    let emulator = Counters::new(&endpoint)?;
    emulator.reset().await.map_err(|e| {
        format!(
            "the emulator at {endpoint} has no /_bench/ endpoints (start it with scripts/emulator.py): {e}"
        )
    })?;
    let all = FUNCTIONS.iter().chain(arranged::FUNCTIONS);
    for name in all.chain([&BARE, &SDK_FLOOR, &DYNAMO_FLOOR]) {
        let path = args.bin_dir.join(name);
        if !path.is_file() {
            return Err(format!(
                "{} is missing: build first (make bench does: cargo build --release -p functions -p orders-bench --no-default-features --features sdk-floor --bins)",
                path.display()
            )
            .into());
        }
    }

    let setup = Setup {
        table: unique("bench-orders"),
        carts: unique("bench-carts"),
        bus: unique("bench-bus"),
    };
    provision(Path::new("template.yaml"), &setup).await?;

    let work = std::env::temp_dir().join(unique("orders-bench"));
    let log_dir = work.join("logs");
    std::fs::create_dir_all(&log_dir)?;
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.into());
    let env: Vec<(String, String)> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("LAMBDA_TASK_ROOT", args.bin_dir.display().to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", var("AWS_REGION", "us-east-1")),
        ("AWS_DEFAULT_REGION", var("AWS_REGION", "us-east-1")),
        ("AWS_ACCESS_KEY_ID", var("AWS_ACCESS_KEY_ID", "test")),
        (
            "AWS_SECRET_ACCESS_KEY",
            var("AWS_SECRET_ACCESS_KEY", "test"),
        ),
        ("AWS_SESSION_TOKEN", "bench".into()),
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("TABLE_NAME", setup.table.clone()),
        ("CARTS_TABLE", setup.carts.clone()),
        ("EVENT_BUS_NAME", setup.bus.clone()),
        ("JWT_SECRET", orders_tests::SECRET.into()),
        // The webhook samples are pointed at this program's receiver on 127.0.0.1, which
        // only local mode lets a subscription target (the older
        // WEBHOOKS_ALLOW_PRIVATE_TARGETS no longer does: create-webhook answered 400).
        (orders::wiring::LOCAL_MODE, "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    let mut bench = Runner::start(
        args.bin_dir.clone(),
        log_dir,
        Some(emulator),
        setup.table.clone(),
        setup.carts.clone(),
        args.wrap.clone(),
    )
    .await?;
    bench.env = env;
    let events_dir = PathBuf::from("events");
    let mut ids = Ids {
        hook_url: format!("http://{}/hook", bench.runtime_api),
        ..Ids::default()
    };
    let selected = |name: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    };

    // 1. One call per API operation, each in a fresh process, counting DynamoDB requests.
    let mut calls = requests::per_call(&mut bench, &events_dir, &mut ids, &unique("key")).await?;
    // The newer functions: a stack each, arranged as `make invoke` arranges it, and one
    // call each.
    let (arranged, arranged_calls) = arranged::prepare(
        &mut bench,
        &events_dir,
        Path::new("template.yaml"),
        &selected,
    )
    .await?;
    calls.extend(arranged_calls);
    // 2. Cold start, first answer, warm invocations, peak memory and size of every binary.
    bench.warm = WARM;
    let rows = coldstart::rounds(
        &mut bench,
        args.runs,
        selected,
        &events_dir,
        &mut ids,
        &arranged,
        &setup.table,
        &work,
    )
    .await?;

    let mut report = report::report(args, &rows, &calls, &common::load_average());
    println!("\n{report}");
    if let Some(out) = &args.out {
        // What people wrote below the marker (analysis, profiles) outlives the figures.
        let notes = std::fs::read_to_string(out).unwrap_or_default();
        if let Some(at) = notes.find(report::NOTES_MARKER) {
            report.push('\n');
            report.push_str(&notes[at..]);
        }
        std::fs::write(out, &report)?;
        eprintln!("bench: wrote {}", out.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
