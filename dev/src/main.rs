//! `make dev`: provisions the emulator from template.yaml, seeds the demo cart,
//! prints dev tokens and serves the API on 127.0.0.1:${PORT:-3000}.

use std::sync::Arc;
use std::time::Duration;

use orders::auth::issue_hs256_token;
use orders::wiring::{CartsFrom, Wiring};
use orders_dev::provision::{self, DEMO_CART};
use orders_dev::server::{self, Router};
use orders_dev::template::Template;
use orders_dev::{local, pipeline};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The demo customer's contact, in its dev token's claims.
const DEMO_EMAIL: &str = "jane.doe@example.com";
const DEMO_PHONE: &str = "+12125550123";

/// At most this many carts are seeded to show the create limit.
const LIMIT_DEMO_CARTS: u32 = 50;

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    orders::inbound::logging::init();
    let template_path = var("ORDERS_TEMPLATE", "template.yaml");
    let port: u16 = var("PORT", "3000").parse()?;
    // The local stack's settings: the environment, with local mode on and the defaults
    // `make dev` documents. The functions are built from them by the same wiring as on
    // Lambda.
    let settings = local::settings()?;
    let secret = settings.required("JWT_SECRET")?.to_string();
    let table = settings.required("TABLE_NAME")?.to_string();
    let bus = settings.required("EVENT_BUS_NAME")?.to_string();

    let template = Template::load(&template_path)?;
    let router =
        Router::new(template.routes()?)?.with_method_fallbacks(template.method_fallbacks()?)?;
    let sdk = orders::adapters::aws::sdk_config().await;
    // Tables, demo cart and stock, and the event pipeline's queues, bus and rules as the
    // template declares them; the consumers run in this process.
    let (settings, queues) = local::provision(settings, &template, &sdk).await?;
    // Provider keys in Secrets Manager, given by ARN, and webhook secrets sealed by KMS,
    // as deployed (dev/src/secrets.rs).
    let settings = orders_dev::secrets::as_deployed(&sdk, settings, "orders-local").await?;
    let wiring = Wiring::load(settings, sdk.clone()).await;
    let local = pipeline::Local {
        sdk: sdk.clone(),
        table: table.clone(),
        queues,
    };
    let consumers = pipeline::start(local, &wiring, &template.consumers()).await?;
    let _sweep = pipeline::start_sweep(&wiring)?;
    // Every email SES on the emulator sends, printed as it goes (recipient, subject,
    // first lines), so a developer sees what a customer would get.
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        tokio::spawn(orders_dev::mail::print_sent_emails(endpoint));
    }
    let app = Arc::new(wiring.api()?);
    // The operator console on the same origin, signed in with a pasted dev token.
    let router = Arc::new(router.with_console(orders::wiring::console_site(wiring.settings())?));
    // One cart more than the limit allows, so that the banner's loop ends in a 429.
    let carts = CartsFrom::from_settings(wiring.settings())?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let create_limit = match (wiring.create_limit()?, &carts) {
        (Some(limit), CartsFrom::Table(carts_table)) => {
            let carts = limit.count.saturating_add(1).min(LIMIT_DEMO_CARTS);
            let (_, user_id, lines) = DEMO_CART;
            for i in 1..=carts {
                let cart_id = format!("limit-{i}");
                provision::put_cart(&dynamodb, carts_table, &cart_id, user_id, "USD", lines)
                    .await?;
            }
            format!(
                "{} orders per {} s per caller, the next one 429 with Retry-After. Try it on \
                 the seeded carts limit-1..limit-{carts}:\n  for i in $(seq 1 {carts}); do \
                 curl -s -o /dev/null -w '%{{http_code}} ' -X POST http://127.0.0.1:{port}/api/orders \
                 -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \
                 -d '{{\"cart_id\":\"limit-'$i'\",\"payment_method\":\"credit_card\",\
                 \"shipping_address\":{{\"name\":\"Jane Doe\",\"address\":\"123 Main St\",\
                 \"city\":\"New York\",\"state\":\"NY\",\"zip\":\"10001\",\"country\":\"US\"}}}}'; \
                 done; echo",
                limit.count, limit.window
            )
        }
        (Some(limit), CartsFrom::Api(_)) => format!(
            "{} orders per {} s per caller, the next one 429 with Retry-After",
            limit.count, limit.window
        ),
        (None, _) => "off".into(),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;

    let day = Duration::from_secs(24 * 60 * 60);
    // With an email claim, so that the walk-through's messages have a contact.
    let customer = orders::auth::issue_hs256_token_with_claims(
        secret.as_bytes(),
        "user789",
        "",
        &serde_json::json!({
            "email": DEMO_EMAIL,
            "email_verified": true,
            "phone_number": DEMO_PHONE,
            "phone_number_verified": true
        }),
        day,
    );
    let admin = issue_hs256_token(secret.as_bytes(), "admin", "orders:admin", day);
    let fulfill = issue_hs256_token(secret.as_bytes(), "fulfillment", "orders:fulfill", day);
    println!("\nOrders API on http://127.0.0.1:{port} (template: {template_path})");
    for (route, _) in router.routes() {
        println!("  {:<6} {}", route.method, route.path);
    }
    println!(
        "\nOperator console: http://127.0.0.1:{port}/console/ (paste ADMIN_TOKEN into \"Access token\")"
    );
    println!("\nDev tokens (HS256, valid 24 h):");
    println!(
        "  export TOKEN={customer}   # user789, the demo cart's owner ({DEMO_EMAIL}, {DEMO_PHONE})"
    );
    println!("  export ADMIN_TOKEN={admin}");
    println!("  export FULFILL_TOKEN={fulfill}");
    println!(
        "\nDemo cart: abc123 of user789 (2 x USB Cable 10.00, 1 x Keyboard 55.00), 100 of each in stock."
    );
    println!(
        "Events: table stream -> publisher -> bus `{bus}` -> queues -> fulfillment and webhooks,"
    );
    println!("all in this process; its log shows each step.");
    println!(
        "Messages: each email SES (on the emulator) sends is printed here as `email to …`; read \
         them back with curl -s {}/_ses/messages (README, \"Messages\").",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    );
    println!("Create limit (ORDER_CREATE_LIMIT, `<count>/<seconds>` or 0): {create_limit}");
    println!("Ctrl-C stops.\n");

    let pipeline_stopped = async move {
        for task in consumers {
            task.await??;
        }
        Ok::<(), Error>(())
    };
    tokio::select! {
        result = server::serve(listener, app, router) => result?,
        result = pipeline_stopped => result?,
        _ = tokio::signal::ctrl_c() => println!("\nstopping"),
    }
    Ok(())
}
