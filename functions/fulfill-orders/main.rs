//! Fulfillment queue consumer: `order.confirmed` reserves stock and marks the order
//! processing (or backordered); `order.cancelled` releases the reservation.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use orders::inbound::sqs;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    orders::inbound::logging::init();
    let fulfillment = Wiring::from_env().await.fulfillment()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(sqs::fulfill(&fulfillment, event.payload).await)
    }))
    .await
}
