//! Payments queue consumer: a cancelled order's payment is refunded in full, or its
//! unpaid intent withdrawn at Stripe; a received return's refund left pending by its
//! request is finished (with its restock), by the same keys.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use orders::inbound::sqs;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    orders::inbound::logging::init();
    let wiring = Wiring::from_env().await;
    let payments = wiring.payment_service()?;
    let returns = wiring.return_service()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(sqs::settle(&payments, Some(&returns), event.payload).await)
    }))
    .await
}
