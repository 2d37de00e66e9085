//! Notifications queue consumer: an email (and, for shipped and delivered, an SMS) to
//! the order's contact on every key change; on `order.confirmed` the invoice is
//! issued first and attached.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use orders::inbound::sqs;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    orders::inbound::logging::init();
    let notifications = Wiring::from_env().await.notifications()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(sqs::notify(&notifications, event.payload).await)
    }))
    .await
}
