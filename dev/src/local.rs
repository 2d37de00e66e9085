//! The local stack's settings and provisioning, shared by `make dev` (src/main.rs) and
//! `make invoke` (bench/src/bin/invoke.rs), so that a function invoked on its own meets
//! the same tables, demo data, bus and queues as the whole stack.

use aws_config::SdkConfig;
use orders::adapters::dynamo::DynamoInventory;
use orders::auth::DEV_JWT_SECRET;
use orders::ports::Inventory;
use orders::wiring::{CartsFrom, ConfigError, LOCAL_MODE, Settings};

use crate::pipeline::{self, PipelineError, Queues};
use crate::provision::{self, DEMO_CART, ProvisionError};
use crate::template::{Template, TemplateError};

/// The local stack's Stripe keys (localstripe takes any `sk_` key; the webhook secret
/// is the one make dev registers with it).
pub const DEV_STRIPE_SECRET_KEY: &str = "sk_test_orders_local";
pub const DEV_STRIPE_WEBHOOK_SECRET: &str = "whsec_orders_local_dev";
/// The documented local key pair of SendGrid's signed event webhook (P-256): `make dev`
/// checks with the public key (`SENDGRID_WEBHOOK_PUBLIC_KEY`, base64 SubjectPublicKeyInfo)
/// and the samples sign with the private one (PKCS#8). Local only, like the others.
pub const DEV_SENDGRID_PUBLIC_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIITTtnU1h4a7xMGEJM04YKIHJWKtPaUDuGfU0LTslhQXwv/j9oW0CxTraoHujwFrnH6C/fiDi99nx3RsvkoqPg==";
pub const DEV_SENDGRID_PRIVATE_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfLFfTRaaCAKqQg7ioEh6d+GBiKAk0lDJSk4OZVDZ6aChRANCAAQghNO2dTWHhrvEwYQkzThgogclYq09pQO4Z9TQtOyWFBfC/+P2hbQLFOtqge6PAWucfoL9+IOL32fHdGy+Sio+";

/// Stock of each demo product.
pub const DEMO_STOCK: u64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "AWS_ENDPOINT_URL is not set: the local stack only talks to an emulator (run `make dev`)"
    )]
    NoEmulator,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("stock: {0}")]
    Stock(String),
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// The local stack's settings: the environment, with local mode on and the defaults
/// the README documents (`TABLE_NAME=orders`, `CARTS_TABLE=carts` unless
/// `CART_API_URL` is set, `JWT_SECRET` the dev secret, `EVENT_BUS_NAME=orders`).
pub fn settings() -> Result<Settings, LocalError> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        return Err(LocalError::NoEmulator);
    }
    let mut settings = Settings::from_env()
        .with(LOCAL_MODE, "true")
        .with("TABLE_NAME", var("TABLE_NAME", "orders"))
        .with("JWT_SECRET", var("JWT_SECRET", DEV_JWT_SECRET))
        .with("EVENT_BUS_NAME", var("EVENT_BUS_NAME", "orders"));
    if settings.get("CART_API_URL").is_none() {
        settings = settings.with("CARTS_TABLE", var("CARTS_TABLE", "carts"));
    }
    settings = settings.with(
        "SENDGRID_WEBHOOK_PUBLIC_KEY",
        var("SENDGRID_WEBHOOK_PUBLIC_KEY", DEV_SENDGRID_PUBLIC_KEY),
    );
    // With a Stripe stand-in (make dev starts localstripe), payments are on with the
    // documented local keys.
    if settings.get("STRIPE_API_BASE").is_some() {
        settings = settings
            .with(
                "STRIPE_SECRET_KEY",
                var("STRIPE_SECRET_KEY", DEV_STRIPE_SECRET_KEY),
            )
            .with(
                "STRIPE_WEBHOOK_SECRET",
                var("STRIPE_WEBHOOK_SECRET", DEV_STRIPE_WEBHOOK_SECRET),
            );
    }
    CartsFrom::from_settings(&settings)?;
    Ok(settings)
}

/// Creates what `template` declares (the orders table, the queues, the bus and its
/// rules) unless it exists, and the carts table with the demo cart and the demo stock.
/// Answers the settings with `WEBHOOK_QUEUE_URL` and `ERASURE_QUEUE_URL` filled in,
/// and the queues.
pub async fn provision(
    settings: Settings,
    template: &Template,
    sdk: &SdkConfig,
) -> Result<(Settings, Queues), LocalError> {
    let table = settings.required("TABLE_NAME")?.to_string();
    let bus = settings.required("EVENT_BUS_NAME")?.to_string();
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    provision::ensure_table(&dynamodb, &table, &template.table("OrdersTable")?).await?;
    if let CartsFrom::Table(carts_table) = CartsFrom::from_settings(&settings)? {
        provision::ensure_table(&dynamodb, &carts_table, &provision::carts_table_spec()).await?;
        let (cart_id, user_id, lines) = DEMO_CART;
        provision::put_cart(&dynamodb, &carts_table, cart_id, user_id, "USD", lines).await?;
        provision::put_cart_json(&dynamodb, &carts_table, &provision::demo_priced_cart()).await?;
    }
    let queues = pipeline::provision(
        &aws_sdk_sqs::Client::new(sdk),
        &aws_sdk_eventbridge::Client::new(sdk),
        &bus,
        "",
        &template.queues(),
        &template.rules()?,
    )
    .await?;
    let inventory = DynamoInventory::new(dynamodb, &table);
    for (product_id, _, _, _) in DEMO_CART.2 {
        inventory
            .set_stock(product_id, DEMO_STOCK)
            .await
            .map_err(|e| LocalError::Stock(e.to_string()))?;
    }
    let from = settings
        .get("MAIL_FROM")
        .unwrap_or(orders::wiring::DEV_MAIL_FROM)
        .to_string();
    provision::ensure_sender(sdk, &from).await?;
    let mut settings = settings;
    if let Some((url, _)) = queues.get("WebhookQueue") {
        settings = settings.with("WEBHOOK_QUEUE_URL", url);
    }
    if let Some((url, _)) = queues.get("ErasureQueue") {
        settings = settings.with("ERASURE_QUEUE_URL", url);
    }
    Ok((settings, queues))
}
