//! Scheduled (EventBridge Scheduler): cancels card orders still unpaid after
//! `PENDING_PAYMENT_TTL`; the payments consumer then withdraws their intents.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use orders::inbound::schedule;
use orders::wiring::Wiring;
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    orders::inbound::logging::init();
    let wiring = Wiring::from_env().await;
    let payments = wiring.expiry_service()?;
    let ttl = wiring.pending_payment_ttl()?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        let expired = schedule::expire_unpaid(&payments, ttl).await?;
        Ok::<_, Error>(json!({ "expired": expired }))
    }))
    .await
}
