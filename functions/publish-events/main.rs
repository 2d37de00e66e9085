//! DynamoDB stream consumer: every recorded order change becomes one event on the bus.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use orders::inbound::stream;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    orders::inbound::logging::init();
    let publisher = Wiring::from_env().await.publisher()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| async {
        Ok::<_, Error>(stream::publish(&publisher, event.payload).await)
    }))
    .await
}
