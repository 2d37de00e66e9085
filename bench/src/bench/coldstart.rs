//! The bench's second part: cold start, peak memory and size of every binary. The runs
//! go in rounds (every binary once per round, the floor first) so that whatever else the
//! machine is doing weighs on every row alike, and the ratios to the floor stay
//! meaningful.

use std::collections::BTreeMap;
use std::path::Path;

use orders::ports::WebhookStore;
use serde_json::json;

use super::arranged::{self, Arranged};
use super::requests::{Ids, sample};
use super::runner::Runner;
use super::{BARE, DYNAMO_FLOOR, FUNCTIONS, SDK_FLOOR};
use crate::Error;

/// The functions whose first request reads the order item of `Ids::order` (strongly
/// consistent): their floor reads that very item (see bench/src/bin/dynamo-floor.rs).
const READS_ORDER_FIRST: [&str; 3] = ["get-order", "get-order-history", "fulfill-orders"];

/// Runs every binary (those `selected`, and the floors) `runs` times, in rounds, with
/// `ids`' orders and webhook in their events (a create-webhook run's webhook replaces
/// the one in `ids`), and the `arranged` functions on their own stacks; answers a row
/// per binary and per variant. `table`: the orders table; `work`: where the zips go.
#[allow(clippy::too_many_arguments)]
pub async fn rounds(
    bench: &mut Runner,
    runs: usize,
    selected: impl Fn(&str) -> bool,
    events_dir: &Path,
    ids: &mut Ids,
    arranged: &[Arranged],
    table: &str,
    work: &Path,
) -> Result<Vec<Row>, Error> {
    eprintln!(
        "bench: cold start over {runs} rounds of every binary (runtime API on {})",
        bench.runtime_api
    );
    let plain = [BARE, SDK_FLOOR]
        .into_iter()
        .chain(FUNCTIONS)
        .chain(arranged.iter().map(|a| a.name))
        .map(|name| (name, name.to_string(), None));
    let variants = variants(&bench_key().await?);
    let variants = variants
        .iter()
        .map(|(name, label, var, value)| (*name, label.clone(), Some((*var, value.as_str()))));
    let mut entries = Vec::new();
    for (name, label, setting) in plain.chain(variants) {
        if name != BARE && name != SDK_FLOOR && !selected(name) {
            continue;
        }
        let binary = bench.binary(name);
        let row = Row {
            name: label,
            cold_ms: Vec::new(),
            peak_kib: Vec::new(),
            binary_bytes: std::fs::metadata(&binary)?.len(),
            zip_bytes: zip_size(&binary, work)?,
            answers: BTreeMap::new(),
            first_ms: Vec::new(),
            warm_ms: Vec::new(),
            floor_operation: None,
            floor_first_ms: Vec::new(),
            floor_warm_ms: Vec::new(),
        };
        entries.push((name, setting, row));
    }
    for _ in 0..runs {
        for (name, setting, row) in &mut entries {
            let name: &str = name;
            bench.extra_env = setting
                .map(|(k, v)| vec![(k.to_string(), v.to_string())])
                .unwrap_or_default();
            if name == "get-webhook" && !ids.webhook.is_empty() {
                prune_webhooks(table, &ids.webhook).await?;
            }
            let arranged = arranged
                .iter()
                .find(|a| a.name == name && setting.is_none());
            let run = if let Some(function) = arranged {
                arranged::run(bench, function, events_dir).await?
            } else {
                let event = if name == BARE || name == SDK_FLOOR {
                    json!({"bench": true})
                } else {
                    sample(events_dir, name, ids)?
                };
                bench.run(name, &event).await?
            };
            if name == "create-webhook" {
                let body = run.answer.body();
                if let Some(id) = body["webhook_id"].as_str().or(body["id"].as_str()) {
                    ids.webhook = id.to_string();
                }
            }
            row.cold_ms.push(run.cold_start.as_secs_f64() * 1000.0);
            row.first_ms.push(ms(run.first_answer));
            row.warm_ms.extend(run.warm.iter().copied().map(ms));
            row.peak_kib.extend(run.peak_kib);
            *row.answers.entry(run.answer.summary()).or_default() += 1;
            // Next to it, the floor making the one request this function made first.
            let first_request = run.dynamo.first().map(|r| r.operation.clone());
            if let (Some(operation), false) = (first_request, name == BARE || name == SDK_FLOOR) {
                // A fair floor: the same order item, when that is what the function read
                // first; otherwise a key of the floor's own.
                let (pk, sk) = if operation == "GetItem" && READS_ORDER_FIRST.contains(&name) {
                    (format!("ORDER#{}", ids.order), "ORDER".to_string())
                } else {
                    ("BENCH#floor".to_string(), "FLOOR".to_string())
                };
                bench.extra_env = vec![
                    ("FLOOR_OPERATION".into(), operation.clone()),
                    ("FLOOR_PK".into(), pk),
                    ("FLOOR_SK".into(), sk),
                ];
                let floor = bench.run(DYNAMO_FLOOR, &json!({"bench": true})).await?;
                row.floor_operation = Some(operation);
                row.floor_first_ms.push(ms(floor.first_answer));
                row.floor_warm_ms.extend(floor.warm.iter().copied().map(ms));
            }
        }
    }
    let mut rows = Vec::new();
    for (_, _, mut row) in entries {
        for figures in [
            &mut row.first_ms,
            &mut row.warm_ms,
            &mut row.floor_first_ms,
            &mut row.floor_warm_ms,
        ] {
            figures.sort_by(f64::total_cmp);
        }
        row.cold_ms.sort_by(f64::total_cmp);
        row.peak_kib.sort_unstable();
        eprintln!(
            "  {:<24} median {:>7.2} ms  peak {:>5.1} MiB  {}",
            row.name,
            median(&row.cold_ms),
            row.peak_kib.last().copied().unwrap_or(0) as f64 / 1024.0,
            answers(&row.answers)
        );
        rows.push(row);
    }
    Ok(rows)
}

/// Extra rows: get-order under settings the plain rows leave out, to show what its cold
/// start is made of (see docs/bench.md).
/// - `SSL_CERT_FILE` = the system bundle: every HTTPS client then trusts the platform's
///   store (shared/src/adapters/tls.rs) and parses its ~150 roots at start, instead of the
///   Amazon roots (AWS SDK) and the compiled-in roots (reqwest) it uses by default.
/// - `JWT_JWKS_URL` (production token verification): the authenticator builds its HTTPS
///   client before the first poll; keys are only fetched on first use, and the bench's
///   HS256 token is refused before that (401).
/// - `STRIPE_SECRET_KEY_ARN` = `key_arn`: one provider key read from Secrets Manager at
///   init, as a deployed function given a key does (issue 22). get-order does not use the
///   key, so the row differs from get-order's by the read alone: the Secrets Manager
///   client and one `GetSecretValue`.
pub fn variants(key_arn: &str) -> Vec<(&'static str, String, &'static str, String)> {
    let mut variants = Vec::new();
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(bundle).is_file() {
        variants.push((
            "get-order",
            "get-order + SSL_CERT_FILE=system bundle".to_string(),
            "SSL_CERT_FILE",
            bundle.to_string(),
        ));
    }
    variants.push((
        "get-order",
        "get-order + JWT_JWKS_URL".to_string(),
        "JWT_JWKS_URL",
        "https://jwks.invalid/.well-known/jwks.json".to_string(),
    ));
    // The two ways a key by ARN is read (wiring/secrets.rs): before the first poll
    // (the secrets a request is checked against), and in the background (the keys a
    // provider is called with; get-order never waits for it).
    variants.push((
        "get-order",
        "get-order + a key read before the first poll (STRIPE_WEBHOOK_SECRET_ARN)".to_string(),
        "STRIPE_WEBHOOK_SECRET_ARN",
        key_arn.to_string(),
    ));
    variants.push((
        "get-order",
        "get-order + a key read in the background (STRIPE_SECRET_KEY_ARN)".to_string(),
        "STRIPE_SECRET_KEY_ARN",
        key_arn.to_string(),
    ));
    variants
}

/// A provider key in the emulator's Secrets Manager, for the variant that reads one.
async fn bench_key() -> Result<String, Error> {
    let sdk = orders::adapters::aws::sdk_config().await;
    Ok(
        orders_dev::secrets::put_secret(&sdk, "orders-bench/STRIPE_SECRET_KEY", "sk_test_bench")
            .await?,
    )
}

/// Keeps only `keep` among the webhook subscriptions (the cold-start runs of
/// create-webhook make one each), so deliver-webhooks delivers to one receiver.
async fn prune_webhooks(table: &str, keep: &str) -> Result<(), Error> {
    let sdk = orders::adapters::aws::sdk_config().await;
    let store = orders::adapters::dynamo::webhooks::DynamoWebhookStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    );
    for subscription in store.list().await? {
        if subscription.id.as_str() != keep {
            store.delete(&subscription.id).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Figures.

/// One row of the cold-start table: a binary, or a binary with one more setting.
pub struct Row {
    pub name: String,
    /// Sorted.
    pub cold_ms: Vec<f64>,
    /// Sorted.
    pub peak_kib: Vec<u64>,
    pub binary_bytes: u64,
    pub zip_bytes: u64,
    /// The answers' summaries, and how often each came.
    pub answers: BTreeMap<String, usize>,
    /// Sorted: spawn to the first answer.
    pub first_ms: Vec<f64>,
    /// Sorted: the warm invocations, poll answered to response.
    pub warm_ms: Vec<f64>,
    /// The DynamoDB operation the function made first, which its floor made.
    pub floor_operation: Option<String>,
    /// Sorted: the floor's first answers and warm invocations, run next to this row's.
    pub floor_first_ms: Vec<f64>,
    pub floor_warm_ms: Vec<f64>,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `summary ×count, …`
pub fn answers(answers: &BTreeMap<String, usize>) -> String {
    answers
        .iter()
        .map(|(a, n)| format!("{a} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Zips `binary` as `bootstrap` (deflate, as cargo-lambda does) with python's zipfile and
/// returns the zip's size.
fn zip_size(binary: &Path, work: &Path) -> Result<u64, Error> {
    let zip = work.join(format!(
        "{}.zip",
        binary.file_name().unwrap_or_default().to_string_lossy()
    ));
    let script = "import sys, zipfile\n\
        info = zipfile.ZipInfo('bootstrap', (2026, 1, 1, 0, 0, 0))\n\
        info.external_attr = 0o100755 << 16\n\
        info.compress_type = zipfile.ZIP_DEFLATED\n\
        with zipfile.ZipFile(sys.argv[2], 'w') as z, open(sys.argv[1], 'rb') as f:\n\
        \x20   z.writestr(info, f.read())\n";
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(binary)
        .arg(&zip)
        .status()?;
    if !status.success() {
        return Err(format!("zipping {} failed", binary.display()).into());
    }
    Ok(std::fs::metadata(&zip)?.len())
}
