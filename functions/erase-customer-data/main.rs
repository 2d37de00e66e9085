//! Erasure queue consumer: one page of a customer's erasure job per message, each
//! page queueing the next until the job is done.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use orders::inbound::sqs;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    orders::inbound::logging::init();
    let privacy = Wiring::from_env().await.privacy_service()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(sqs::erase(&privacy, event.payload).await)
    }))
    .await
}
