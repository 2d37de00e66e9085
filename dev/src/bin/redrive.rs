//! `make redrive QUEUE=<dead-letter queue name or URL> [TO=<queue>]`: moves the
//! dead-letter queue's messages back to the queue that sends it its dead letters (or
//! `TO`), each once (`orders_dev::redrive`). Against `AWS_ENDPOINT_URL` when set (the
//! local stack's emulator), else AWS, where `aws sqs start-message-move-task` is the
//! usual way (docs/operations.md).

use orders_dev::redrive::{HOLD, queue_url, redrive, source_of};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (mut queue, mut to) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--to" => to = args.next(),
            other if queue.is_none() => queue = Some(other.to_string()),
            other => return Err(format!("unexpected argument {other:?}").into()),
        }
    }
    let queue = queue.ok_or("usage: redrive <dead-letter queue name or URL> [--to <queue>]")?;
    let sqs = aws_sdk_sqs::Client::new(&orders::adapters::aws::sdk_config().await);
    let dead_letters = queue_url(&sqs, &queue).await?;
    let source = match to {
        Some(to) => queue_url(&sqs, &to).await?,
        None => source_of(&sqs, &dead_letters).await?,
    };
    let done = redrive(&sqs, &dead_letters, &source, HOLD).await?;
    println!(
        "redrive {dead_letters} -> {source}: {} moved, {} refused by the source (still in the dead-letter queue), {} sent but not deleted (may come again)",
        done.moved, done.failed, done.not_deleted
    );
    if done.failed + done.not_deleted > 0 {
        return Err("not every message was moved; run it again".into());
    }
    Ok(())
}
