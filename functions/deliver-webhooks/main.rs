//! The webhook queue's consumer: every order event, signed, to each subscription that
//! wants it; failed messages are reported and retried later.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use orders::pipeline::webhooks::Deliveries;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deliveries = Deliveries::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(deliveries.handle(event.payload).await)
    }))
    .await
}
