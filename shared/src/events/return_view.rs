//! A return as the API answers it (`POST`/`GET /api/orders/{order_id}/returns` and
//! every step), and in short as the order view and the return queue list it.

use serde::Serialize;

use super::view::{AllocationView, Amount, ReturnLineView, lines};
use crate::domain::Order;
use crate::domain::fulfillment::returns::{RefundState, Return, Step};
use crate::domain::time::timestamp;

#[derive(Debug, Serialize)]
pub struct ReturnView {
    pub return_id: String,
    pub order_id: String,
    pub status: &'static str,
    pub items: Vec<ReturnLineView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub created_at: String,
    /// Each step taken: its status, when, and the part its actor played.
    pub steps: Vec<StepView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<ReturnLabelView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<ReturnRefundView>,
}

#[derive(Debug, Serialize)]
pub struct StepView {
    pub status: &'static str,
    pub at: String,
    pub by: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ReturnLabelView {
    pub carrier: String,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
    pub label_url: Option<String>,
    /// Where the parcel is on its way back: `label_created`, `in_transit`, `delivered`.
    pub status: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ReceiptView {
    pub items: Vec<ReceivedLineView>,
    pub refund_shipping: bool,
    pub restocking_fee: Amount,
    /// The restocked items are back in stock.
    pub restocked: bool,
}

#[derive(Debug, Serialize)]
pub struct ReceivedLineView {
    pub product_id: String,
    pub quantity: u32,
    pub restock: bool,
}

#[derive(Debug, Serialize)]
pub struct ReturnRefundView {
    pub amount: Amount,
    pub currency: &'static str,
    /// `pending` (being refunded), `refunded`, `deferred` (waiting for `POST …/refund`),
    /// `refund_due` (the order was paid by hand: a person pays it), `none`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// What the refund gives back per line (net and tax) and of the shipping.
    pub allocation: Vec<AllocationView>,
}

impl ReturnView {
    pub fn of(order: &Order, r: &Return) -> ReturnView {
        let step = |status: &'static str, step: &Option<Step>| {
            step.as_ref().map(|s| StepView {
                status,
                at: timestamp(s.at),
                by: s.role.as_str(),
            })
        };
        let steps = [
            step("requested", &Some(r.requested.clone())),
            step("approved", &r.approved),
            step("declined", &r.declined),
            step("cancelled", &r.cancelled),
            step("received", &r.received),
        ]
        .into_iter()
        .flatten()
        .collect();
        let currency = order.total.currency();
        ReturnView {
            return_id: r.return_id.to_string(),
            order_id: order.id.to_string(),
            status: r.status.as_str(),
            items: lines(&r.items),
            note: r.note.clone(),
            created_at: timestamp(r.requested.at),
            steps,
            decline_reason: r.decline_reason.clone(),
            label: r.label.as_ref().map(|l| ReturnLabelView {
                carrier: l.carrier.clone(),
                tracking_number: l.tracking_number.clone(),
                tracking_url: l.tracking_url.clone(),
                label_url: l.label_url.clone(),
                status: l.status.as_str(),
            }),
            receipt: r.receipt.as_ref().map(|c| ReceiptView {
                items: c
                    .lines
                    .iter()
                    .map(|l| ReceivedLineView {
                        product_id: l.product_id.clone(),
                        quantity: l.quantity,
                        restock: l.restock,
                    })
                    .collect(),
                refund_shipping: c.refund_shipping,
                restocking_fee: c.restocking_fee.into(),
                restocked: c.restocked,
            }),
            refund: r.receipt.as_ref().map(|c| ReturnRefundView {
                amount: c.refund.into(),
                currency: currency.code(),
                status: c.refund_state.as_str(),
                refund_id: c.refund_id.clone(),
                allocation: if c.refund_state == RefundState::None {
                    Vec::new()
                } else {
                    AllocationView::of(&c.allocation)
                },
            }),
        }
    }
}
