//! Payments queue consumer: a cancelled order's payment is refunded in full, or its
//! unpaid intent withdrawn at Stripe.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use orders::inbound::sqs;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let payments = Wiring::from_env().await.payment_service()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(sqs::settle(&payments, event.payload).await)
    }))
    .await
}
