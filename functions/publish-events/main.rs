//! The stream publisher: each recorded change of an order in the table's stream
//! becomes one EventBridge event on `EVENT_BUS_NAME` (see `orders::pipeline::publisher`).

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use orders::pipeline::publisher::Publisher;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let publisher = &Publisher::from_env().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, std::convert::Infallible>(publisher.handle(event.payload).await)
    }))
    .await
}
