//! Bounce queue consumer: SES's bounce and complaint notifications (through SNS)
//! suppress the addresses they name.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use orders::inbound::sqs;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    orders::inbound::logging::init();
    let suppressions = Wiring::from_env().await.suppression_service()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(sqs::suppress(&suppressions, event.payload).await)
    }))
    .await
}
