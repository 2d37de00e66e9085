//! Scheduled functions' entry points: EventBridge Scheduler invokes them with a
//! payload nobody reads; what they do depends only on the time.

use std::time::Duration;

use time::OffsetDateTime;

use crate::services::payments::{PaymentService, PaymentServiceError};

/// The expiry sweep: cancels the orders left unpaid for longer than `ttl`.
pub async fn expire_unpaid(
    payments: &PaymentService,
    ttl: Duration,
) -> Result<usize, PaymentServiceError> {
    let expired = payments
        .expire_unpaid(OffsetDateTime::now_utc(), ttl)
        .await?;
    for order_id in &expired {
        tracing::info!(%order_id, "cancelled: payment timed out");
    }
    tracing::info!(
        count = expired.len(),
        ttl_seconds = ttl.as_secs(),
        "expiry sweep done"
    );
    Ok(expired.len())
}
