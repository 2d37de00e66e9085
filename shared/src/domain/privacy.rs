//! A customer's personal data on their orders, and its erasure (GDPR article 17,
//! CCPA's right to delete): what is personal, what an erased order keeps, which
//! orders may not be erased yet, and the job that erases a customer's orders page by
//! page. Pure functions of the orders as read; the store writes each erased order in
//! one conditional write on the version it was planned from.

use time::OffsetDateTime;

use super::contact::Contact;
use super::fulfillment::returns::{RefundState, Return, ReturnId, ReturnStatus};
use super::order::{HistoryEntry, Order, OrderId, OrderStatus, Role, ShippingAddress};

/// What an erased field reads: the same in every erased order, so nothing about the
/// data is left (not even its length).
pub const ERASED: &str = "[erased]";

/// The reason of the history entry an erasure appends: that it happened, by whom and
/// when (the entry's actor and time), never what was erased. Events of that change
/// are `order.personal_data_erased` (`events::PERSONAL_DATA_ERASED`).
pub const ERASURE_NOTE: &str = "personal data erased";

/// Orders whose goods or money are still moving: erasing their address or contact
/// would strand a parcel, a return or a refund, so an erasure refuses them unless
/// forced. Not yet delivered (nor cancelled), or with a return still open.
pub fn still_open(order: &Order) -> bool {
    status_open(order.status) || order.returns.iter().any(open_return)
}

/// An order status whose goods are still on their way to the customer.
pub fn status_open(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Pending | OrderStatus::Confirmed | OrderStatus::Shipped
    )
}

/// A return whose goods or money are still moving: asked for, approved (the parcel
/// may be on its way back), or received with its refund still to be made (`pending`
/// through the provider, or `deferred` until someone refunds it). Declined, cancelled,
/// refunded, and `refund_due` (paid by hand, outside the system) are settled.
pub fn open_return(ret: &Return) -> bool {
    match ret.status {
        ReturnStatus::Requested | ReturnStatus::Approved => true,
        ReturnStatus::Received => ret.receipt.as_ref().is_some_and(|receipt| {
            matches!(
                receipt.refund_state,
                RefundState::Pending | RefundState::Deferred
            )
        }),
        ReturnStatus::Declined | ReturnStatus::Cancelled => false,
    }
}

/// An order an erasure refuses, as the refusal names it: its status, and the returns
/// that keep it open (none when its status alone does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOrder {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub open_returns: Vec<(ReturnId, ReturnStatus)>,
}

impl OpenOrder {
    /// `order` as a refusal names it, if it is still open.
    pub fn of(order: &Order) -> Option<OpenOrder> {
        still_open(order).then(|| OpenOrder {
            order_id: order.id.clone(),
            status: order.status,
            open_returns: order
                .returns
                .iter()
                .filter(|r| open_return(r))
                .map(|r| (r.return_id.clone(), r.status))
                .collect(),
        })
    }
}

impl std::fmt::Display for OpenOrder {
    /// `ORD… (shipped)`, or `ORD… (delivered; return RET… requested)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}", self.order_id, self.status)?;
        for (id, status) in &self.open_returns {
            write!(f, "; return {id} {status}")?;
        }
        f.write_str(")")
    }
}

/// Whether `order` was erased already (its history says so), so that a second
/// erasure writes nothing and appends no second entry.
pub fn is_erased(order: &Order) -> bool {
    order.history.iter().any(is_erasure_entry)
}

/// The history entry of an erasure: an admin's, with the erasure's note, that left
/// the status as it was (no other change writes this note).
pub fn is_erasure_entry(entry: &HistoryEntry) -> bool {
    entry.role == Role::Admin && entry.reason.as_deref() == Some(ERASURE_NOTE)
}

/// `order` with its personal data erased by `actor` at `at`, as the next version:
/// the shipping address (all but the country, which taxes and statistics need and
/// names nobody), the contact, the reasons the customer typed into the history, and
/// the links to bought labels (a label prints the address). Lines, money, statuses,
/// parcels and the rest of the history stay. `None` when the order was erased
/// already.
pub fn erase(order: &Order, actor: &str, at: OffsetDateTime) -> Option<Order> {
    if is_erased(order) {
        return None;
    }
    let mut erased = order.clone();
    erased.shipping_address = ShippingAddress {
        name: ERASED.into(),
        address: ERASED.into(),
        city: ERASED.into(),
        state: None,
        zip: ERASED.into(),
        country: order.shipping_address.country.clone(),
    };
    erased.contact = Contact::default();
    for entry in &mut erased.history {
        if entry.role == Role::Owner && entry.reason.is_some() {
            entry.reason = Some(ERASED.into());
        }
    }
    for shipment in &mut erased.shipments {
        shipment.label_url = None;
    }
    for ret in &mut erased.returns {
        erase_return(ret);
    }
    erased.version = order.version + 1;
    erased.updated_at = at;
    erased.history.push(HistoryEntry {
        at,
        actor: actor.to_string(),
        role: Role::Admin,
        status: order.status,
        shipping_status: None,
        payment_status: None,
        reason: Some(ERASURE_NOTE.into()),
    });
    Some(erased)
}

/// What the customer typed into a return they asked for (its note and its lines'
/// notes), and its return label's link (the label prints their address as the
/// sender's). Reasons (a fixed list), quantities, steps and money stay; a return
/// staff asked for keeps staff's notes, as the history keeps staff's reasons.
fn erase_return(ret: &mut Return) {
    if ret.requested.role == Role::Owner {
        if ret.note.is_some() {
            ret.note = Some(ERASED.into());
        }
        for line in &mut ret.items {
            if line.note.is_some() {
                line.note = Some(ERASED.into());
            }
        }
    }
    if let Some(label) = &mut ret.label {
        label.label_url = None;
    }
}

named_enum! {
    /// Where an erasure job is: `running` while pages of orders are still to be
    /// erased (in the background), `done` once every order it found is.
    ErasureState {
        Running => "running",
        Done => "done",
    }
}

/// One run of erasing a customer's orders, recorded so that its progress can be
/// shown and its background continuation knows where to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureJob {
    /// `ERA` and 16 characters: names this run.
    pub job_id: String,
    pub user_id: String,
    /// The admin's `sub`: the actor of every history entry it appends.
    pub requested_by: String,
    pub requested_at: OffsetDateTime,
    /// Erase open orders too (the request's `force`).
    pub force: bool,
    pub state: ErasureState,
    /// Where the next page of the customer's orders starts (the store's position);
    /// `None` before the first page and once done.
    pub cursor: Option<String>,
    /// Pages erased so far: what a continuation's save is conditional on.
    pub pages: u64,
    /// Orders this run erased.
    pub erased: u64,
    /// Orders it found erased already (an earlier run's), left as they were.
    pub skipped: u64,
    /// Open orders it erased because it was forced.
    pub forced: u64,
    pub updated_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

impl ErasureJob {
    /// A new run for `user_id`, asked by `requested_by` at `at`.
    pub fn start(user_id: &str, requested_by: &str, force: bool, at: OffsetDateTime) -> ErasureJob {
        ErasureJob {
            job_id: job_id(),
            user_id: user_id.to_string(),
            requested_by: requested_by.to_string(),
            requested_at: at,
            force,
            state: ErasureState::Running,
            cursor: None,
            pages: 0,
            erased: 0,
            skipped: 0,
            forced: 0,
            updated_at: at,
            finished_at: None,
        }
    }
}

/// What erasing one page of orders did, to add to the job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageTally {
    pub erased: u64,
    pub skipped: u64,
    pub forced: u64,
}

impl ErasureJob {
    /// The job after one more page: `next` where the following page starts (`None`:
    /// that was the last, and the job is done).
    pub fn after_page(&self, tally: PageTally, next: Option<String>, at: OffsetDateTime) -> Self {
        let mut job = self.clone();
        job.erased += tally.erased;
        job.skipped += tally.skipped;
        job.forced += tally.forced;
        job.pages += 1;
        job.updated_at = at;
        match next {
            Some(cursor) => job.cursor = Some(cursor),
            None => {
                job.cursor = None;
                job.state = ErasureState::Done;
                job.finished_at = Some(at);
            }
        }
        job
    }
}

fn job_id() -> String {
    const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 10];
    // Only fails when the OS has no randomness, and then nothing else works either.
    let _ = crate::domain::random::fill(&mut bytes);
    let bits = bytes
        .iter()
        .fold(0u128, |b, byte| (b << 8) | u128::from(*byte));
    let mut id = String::from("ERA");
    for i in (0..16).rev() {
        id.push(CROCKFORD[((bits >> (i * 5)) & 31) as usize] as char);
    }
    id
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{OrderId, PaymentMethod, PaymentStatus, ShippingStatus};
    use time::macros::datetime;

    /// A delivered order of `user-1` with an address, a contact and two history entries.
    pub(crate) fn order() -> Order {
        let at = datetime!(2026-11-25 10:00 UTC);
        let entry = |role, reason: Option<&str>| HistoryEntry {
            at,
            actor: "user-1".into(),
            role,
            status: OrderStatus::Delivered,
            shipping_status: None,
            payment_status: None,
            reason: reason.map(str::to_string),
        };
        Order {
            id: OrderId::for_cart("c1"),
            user_id: "user-1".into(),
            cart_id: "c1".into(),
            status: OrderStatus::Delivered,
            payment_status: PaymentStatus::Paid,
            shipping_status: ShippingStatus::Delivered,
            payment_method: PaymentMethod::CreditCard,
            items: Vec::new(),
            pricing: Default::default(),
            total: crate::domain::Money::from_minor(
                100,
                crate::domain::Currency::from_code("USD").unwrap(),
            ),
            shipping_address: ShippingAddress {
                name: "Jane Doe".into(),
                address: "1 Main St".into(),
                city: "Springfield".into(),
                state: Some("IL".into()),
                zip: "62701".into(),
                country: "US".into(),
            },
            tracking_number: None,
            carrier: None,
            payment: None,
            contact: Contact {
                email: Some("jane@example.com".into()),
                phone: Some("+12125550123".into()),
                email_verified: true,
            },
            created_at: at,
            updated_at: at,
            version: 2,
            history: vec![
                entry(Role::Owner, Some("call Jane at home")),
                entry(Role::Fulfillment, Some("left at the door")),
            ],
            shipments: Vec::new(),
            label_failure: None,
            returns: Vec::new(),
        }
    }

    #[test]
    fn erasing_keeps_the_order_and_drops_what_names_the_customer() {
        let at = datetime!(2026-12-01 09:00 UTC);
        let before = order();
        let after = erase(&before, "dpo", at).expect("not erased yet");
        assert_eq!(after.shipping_address.name, ERASED);
        assert_eq!(after.shipping_address.address, ERASED);
        assert_eq!(after.shipping_address.state, None);
        assert_eq!(after.shipping_address.country, "US");
        assert_eq!(after.contact, Contact::default());
        assert_eq!(after.history[0].reason.as_deref(), Some(ERASED));
        // Staff's and fulfillment's notes are the shop's, not the customer's.
        assert_eq!(after.history[1].reason.as_deref(), Some("left at the door"));
        assert_eq!(after.version, 3);
        assert_eq!(after.history.len(), 3);
        let last = after.history.last().unwrap();
        assert_eq!((last.actor.as_str(), last.at), ("dpo", at));
        assert_eq!(last.reason.as_deref(), Some(ERASURE_NOTE));
        assert_eq!((after.total, after.status), (before.total, before.status));
        assert_eq!(
            erase(&after, "dpo", at),
            None,
            "a second erasure does nothing"
        );
    }

    fn a_return(status: ReturnStatus, refund: Option<RefundState>) -> Return {
        use crate::domain::billing::Parts;
        use crate::domain::fulfillment::returns::{
            Receipt, ReturnLabel, ReturnLine, ReturnReason, Step,
        };
        let at = datetime!(2026-11-28 10:00 UTC);
        let usd = crate::domain::Currency::from_code("USD").unwrap();
        Return {
            return_id: ReturnId::fresh(),
            items: vec![ReturnLine {
                product_id: "p001".into(),
                quantity: 1,
                reason: ReturnReason::Damaged,
                note: Some("pick it up at Jane's, 1 Main St".into()),
            }],
            note: Some("call me on +12125550123".into()),
            status,
            requested: Step {
                at,
                actor: "user-1".into(),
                role: Role::Owner,
            },
            approved: None,
            declined: None,
            decline_reason: None,
            cancelled: None,
            received: None,
            receipt: refund.map(|refund_state| Receipt {
                lines: Vec::new(),
                refund_shipping: false,
                restocking_fee: crate::domain::Money::zero(usd),
                refund: crate::domain::Money::zero(usd),
                allocation: Parts {
                    currency: usd,
                    lines: Vec::new(),
                    shipping: None,
                },
                refund_state,
                refund_id: None,
                restocked: true,
                fingerprint: None,
            }),
            label: Some(ReturnLabel {
                carrier: "usps".into(),
                tracking_number: "T1".into(),
                tracking_url: None,
                label_url: Some("https://labels.example/1.pdf".into()),
                transaction_id: "tx1".into(),
                status: crate::domain::fulfillment::ShipmentStatus::LabelCreated,
                tracking: Vec::new(),
            }),
            fingerprint: None,
        }
    }

    #[test]
    fn orders_still_moving_are_open() {
        let mut o = order();
        assert!(!still_open(&o));
        assert_eq!(OpenOrder::of(&o), None);
        for status in [
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Shipped,
        ] {
            o.status = status;
            assert!(still_open(&o));
        }
        o.status = OrderStatus::Cancelled;
        assert!(!still_open(&o));
    }

    #[test]
    fn a_delivered_order_with_an_open_return_is_open() {
        let open = [
            (ReturnStatus::Requested, None),
            (ReturnStatus::Approved, None),
            (ReturnStatus::Received, Some(RefundState::Pending)),
            (ReturnStatus::Received, Some(RefundState::Deferred)),
        ];
        let settled = [
            (ReturnStatus::Declined, None),
            (ReturnStatus::Cancelled, None),
            (ReturnStatus::Received, Some(RefundState::Refunded)),
            (ReturnStatus::Received, Some(RefundState::Due)),
            (ReturnStatus::Received, Some(RefundState::None)),
        ];
        for (status, refund) in open {
            let mut o = order();
            o.returns = vec![
                a_return(ReturnStatus::Cancelled, None),
                a_return(status, refund),
            ];
            assert!(still_open(&o), "{status} {refund:?}");
            let named = OpenOrder::of(&o).expect("named");
            assert_eq!(named.status, OrderStatus::Delivered);
            assert_eq!(
                named.open_returns,
                vec![(o.returns[1].return_id.clone(), status)]
            );
            let text = named.to_string();
            assert!(
                text.contains(&format!(
                    "delivered; return {} {status}",
                    o.returns[1].return_id
                )),
                "{text}"
            );
        }
        for (status, refund) in settled {
            let mut o = order();
            o.returns = vec![a_return(status, refund)];
            assert!(!still_open(&o), "{status} {refund:?}");
        }
    }

    #[test]
    fn erasing_drops_what_the_customer_typed_into_returns() {
        let at = datetime!(2026-12-01 09:00 UTC);
        let mut before = order();
        let mut by_staff = a_return(ReturnStatus::Approved, None);
        by_staff.requested.role = Role::Admin;
        by_staff.note = Some("customer phoned, box crushed".into());
        before.returns = vec![a_return(ReturnStatus::Requested, None), by_staff];
        let after = erase(&before, "dpo", at).unwrap();
        let mine = &after.returns[0];
        assert_eq!(mine.note.as_deref(), Some(ERASED));
        assert_eq!(mine.items[0].note.as_deref(), Some(ERASED));
        assert_eq!(mine.items[0].reason, before.returns[0].items[0].reason);
        assert_eq!(mine.label.as_ref().unwrap().label_url, None);
        assert_eq!(mine.status, ReturnStatus::Requested);
        // Staff's note on a return they asked for stays, as their history reasons do.
        assert_eq!(
            after.returns[1].note.as_deref(),
            Some("customer phoned, box crushed")
        );
        assert_eq!(after.returns[1].label.as_ref().unwrap().label_url, None);
    }

    #[test]
    fn a_job_is_done_after_its_last_page() {
        let at = datetime!(2026-12-01 09:00 UTC);
        let job = ErasureJob::start("user-1", "dpo", false, at);
        assert!(job.job_id.starts_with("ERA") && job.job_id.len() == 19);
        let tally = PageTally {
            erased: 2,
            skipped: 1,
            forced: 0,
        };
        let job = job.after_page(tally, Some("p".into()), at);
        assert_eq!(
            (job.state, job.erased, job.cursor.as_deref()),
            (ErasureState::Running, 2, Some("p"))
        );
        let job = job.after_page(tally, None, at);
        assert_eq!(
            (job.state, job.erased, job.skipped),
            (ErasureState::Done, 4, 2)
        );
        assert_eq!(job.finished_at, Some(at));
    }
}
