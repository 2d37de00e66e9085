//! The functions the bench runs as `make invoke` runs them: each on a local stack of its
//! own (`orders_dev::local::provision` under this run's names: the orders and carts
//! tables, the bus, its rules and queues, the demo stock), with what its sample acts on
//! put in place through the API first (`orders_dev::samples::arrange`: the demo order,
//! paid, confirmed, cancelled, invoiced, shipped, as the sample needs), payments on
//! against localstripe and shipping against the Shippo stand-in (scripts/with-emulator.sh
//! starts both and exports their URLs). Every run then hands the binary its sample
//! again, signed anew (Stripe's signature is only good for 300 s).
//!
//! The older functions keep the bench's one shared stack (`requests::per_call` creates
//! their orders); a new function only needs its name in [`FUNCTIONS`], in a block of
//! its own, and a sample that `samples::arrange` knows how to prepare.

use std::path::Path;

use orders::wiring::{LOCAL_MODE, PROVIDER_KEYS, Wiring, arn_setting};
use orders_dev::samples::{self, Ids};
use orders_dev::{local, template::Template};
use orders_tests::unique;
use serde_json::Value;

use super::requests::Call;
use super::runner::Runner;
use crate::Error;

/// Functions benched on a stack of their own (see the module's comment), in the order
/// their rows appear. Add yours as a block of its own.
pub const FUNCTIONS: &[&str] = &[
    // Payments (issue 12).
    "stripe-webhook",
    "create-refund",
    "settle-payments",
    "expire-orders",
    // Messages and invoices.
    "notify-customers",
    "get-order-invoice",
    // Shipping (issue 18).
    "create-shipment",
    "list-shipments",
    "void-shipment",
    "shippo-webhook",
    // Returns (issue 20) and credit notes (issue 19).
    "create-return",
    "list-order-returns",
    "list-returns",
    "approve-return",
    "decline-return",
    "cancel-return",
    "receive-return",
    "refund-return",
    "list-credit-notes",
    "get-credit-note",
    // The console and the API's 405.
    "serve-console",
    "method-not-allowed",
];

/// The settings a function of the local stack reads, handed to its binary (the bench's
/// common environment gives the rest: region, credentials, endpoint).
const SETTINGS: &[&str] = &[
    LOCAL_MODE,
    "TABLE_NAME",
    "CARTS_TABLE",
    "EVENT_BUS_NAME",
    "JWT_SECRET",
    "WEBHOOK_QUEUE_URL",
    "MAIL_FROM",
    "STRIPE_API_BASE",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "SHIPPO_API_URL",
    "SHIPPO_API_TOKEN",
    "SHIPPO_WEBHOOK_TOKEN",
    "SHIPPO_ADDRESS_FROM",
];

/// One function, its stack arranged for its sample.
pub struct Arranged {
    pub name: &'static str,
    /// Its stack's settings, as environment variables for its binary.
    pub env: Vec<(String, String)>,
    /// Its stack's tables: the DynamoDB requests counted are those naming them.
    pub table: String,
    pub carts_table: String,
    ids: Ids,
    secret: String,
}

impl Arranged {
    /// The sample, with the arranged ids, a fresh token and a fresh Stripe signature.
    pub fn event(&self, events_dir: &Path) -> Result<Value, Error> {
        Ok(samples::load(
            events_dir,
            self.name,
            &self.ids,
            self.secret.as_bytes(),
        )?)
    }
}

/// Arranges a stack for each function of [`FUNCTIONS`] that is `selected`, then runs each
/// once in a fresh process, counting its DynamoDB requests (the answers are the calls
/// the report lists).
pub async fn prepare(
    bench: &mut Runner,
    events_dir: &Path,
    template: &Path,
    selected: impl Fn(&str) -> bool,
) -> Result<(Vec<Arranged>, Vec<Call>), Error> {
    eprintln!("bench: a local stack per function for the samples of the newer functions");
    let template = Template::load(template)?;
    let environments = template.environments();
    let sdk = orders::adapters::aws::sdk_config().await;
    let mut arranged = Vec::new();
    let mut calls = Vec::new();
    for &name in FUNCTIONS.iter().filter(|name| selected(name)) {
        let settings = local::settings()?
            .with("TABLE_NAME", unique("bench-orders"))
            .with("CARTS_TABLE", unique("bench-carts"))
            .with("EVENT_BUS_NAME", unique("bench-bus"));
        let (settings, _) = local::provision(settings, &template, &sdk).await?;
        let secret = settings.required("JWT_SECRET")?.to_string();
        let wiring = Wiring::new(settings.clone(), sdk.clone());
        let api = wiring.api()?;
        let ids = samples::arrange(&wiring, &api, events_dir, name, secret.as_bytes()).await?;
        // Deployed functions get their provider keys by ARN, and the runtime's
        // `AWS_LAMBDA_FUNCTION_NAME` makes them refuse keys given as values. A setting
        // the template gives some functions only (a key's ARN, SHIPPO_API_URL) goes to
        // this one only if the template gives it this one: each key is one
        // GetSecretValue at init, and a provider's URL without its key is refused.
        let deployed =
            orders_dev::secrets::keys_by_arn(&sdk, settings.clone(), &unique("orders-bench"))
                .await?;
        let given = environments.get(name).cloned().unwrap_or_default();
        let own = |setting: &str| {
            given.contains(setting) || !environments.values().any(|env| env.contains(setting))
        };
        let arns: Vec<String> = PROVIDER_KEYS.map(arn_setting).into();
        let function = Arranged {
            name,
            env: SETTINGS
                .iter()
                .copied()
                .chain(arns.iter().map(String::as_str))
                .filter(|s| own(s))
                .filter_map(|s| deployed.get(s).map(|v| (s.to_string(), v.to_string())))
                .collect(),
            table: settings.required("TABLE_NAME")?.to_string(),
            carts_table: settings.get("CARTS_TABLE").unwrap_or_default().to_string(),
            ids,
            secret,
        };
        let run = run(bench, &function, events_dir).await?;
        eprintln!(
            "  {:<48} {:>3} request(s)  -> {}",
            format!("{name} (its sample)"),
            run.dynamo.len(),
            run.answer.summary()
        );
        calls.push((format!("{name} (its sample)"), name.to_string(), run));
        arranged.push(function);
    }
    Ok((arranged, calls))
}

/// Runs `function`'s binary once on its sample, in its stack's settings and counting
/// the requests to its stack's tables; puts the runner's own back afterwards.
pub async fn run(
    bench: &mut Runner,
    function: &Arranged,
    events_dir: &Path,
) -> Result<super::runner::Run, Error> {
    let event = function.event(events_dir)?;
    let tables = (
        std::mem::replace(&mut bench.table, function.table.clone()),
        std::mem::replace(&mut bench.carts_table, function.carts_table.clone()),
    );
    let extra_env = std::mem::replace(&mut bench.extra_env, function.env.clone());
    let run = bench.run(function.name, &event).await;
    (bench.table, bench.carts_table) = tables;
    bench.extra_env = extra_env;
    run
}
