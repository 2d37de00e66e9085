//! An order as the API answers it and the events carry it, money with its currency's
//! digits (`75.00`).

use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::billing::{Parts, Pricing, TaxLine};
use crate::domain::fulfillment::returns::{Return, ReturnLine};
use crate::domain::fulfillment::{Shipment, ShipmentLine};
use crate::domain::time::timestamp;
use crate::domain::{Money, Order, PaymentStatus, Principal, Role};

/// An amount as a JSON number with the currency's minor digits: `75.00`, never
/// `75.0` or `74.99999`.
#[derive(Debug)]
pub struct Amount(Money);

impl From<Money> for Amount {
    fn from(money: Money) -> Amount {
        Amount(money)
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw =
            RawValue::from_string(self.0.to_decimal_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

#[derive(Debug, Serialize)]
pub struct OrderView {
    pub order_id: String,
    pub user_id: String,
    pub status: &'static str,
    pub payment_status: &'static str,
    pub shipping_status: &'static str,
    pub payment_method: &'static str,
    pub total: Amount,
    pub currency: &'static str,
    /// Σ price × quantity; `total = subtotal − discount_total + shipping_total
    /// (+ tax_total unless `taxes_included`)`.
    pub subtotal: Amount,
    pub discount_total: Amount,
    pub shipping_total: Amount,
    pub tax_total: Amount,
    pub taxes_included: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping: Option<ShippingView>,
    pub discounts: Vec<DiscountView>,
    pub items: Vec<LineItemView>,
    pub shipping_address: AddressView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// The online payment; its `client_secret` only in the owner's view of an unpaid
    /// order, never in an event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentView>,
    /// Only in answers to the owner and admins ([`OrderView::for_reader`]); never in
    /// an event, so never in a webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactView>,
    pub cart_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
    /// Its parcels, in short (`GET …/shipments` has them whole).
    pub shipments: Vec<ShipmentSummary>,
    /// Where its returns stand together: `none`, `requested`, `in_progress`,
    /// `partially_returned`, `returned`.
    pub return_status: &'static str,
    /// Its returns, in short (`GET …/returns` has them whole).
    pub returns: Vec<ReturnSummary>,
    /// Why its automatic label was refused (`shipping_status: label_failed`): only in
    /// answers to admins and the fulfillment service ([`OrderView::for_reader`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_failure: Option<LabelFailureView>,
}

#[derive(Debug, Serialize)]
pub struct LabelFailureView {
    /// The provider's messages, as it gave them.
    pub messages: Vec<String>,
    pub at: String,
}

#[derive(Debug, Serialize)]
pub struct PaymentView {
    pub provider: &'static str,
    pub intent_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_received: Option<Amount>,
    pub refunds: Vec<RefundView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RefundView {
    pub refund_id: String,
    pub amount: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: String,
    /// What it gave back per line and of the shipping (net and tax), as its credit
    /// note lists it; empty for a refund no line accounts for (money received beyond
    /// the total, or a refund recorded before refunds were allocated).
    pub allocation: Vec<AllocationView>,
}

/// One part a refund gave back: a line (by product) or the shipping, net and tax.
#[derive(Debug, Serialize)]
pub struct AllocationView {
    /// A product id, or `shipping`.
    pub part: String,
    pub net: Amount,
    pub tax: Amount,
}

impl AllocationView {
    /// The parts `parts` gives back something of, lines first, then the shipping.
    pub fn of(parts: &Parts) -> Vec<AllocationView> {
        let tax = |taxes: &[TaxLine]| {
            Amount::from(Money::from_minor(
                taxes.iter().map(|t| t.amount.minor()).sum(),
                parts.currency,
            ))
        };
        parts
            .refunded_lines()
            .map(|l| AllocationView {
                part: l.product_id.clone(),
                net: l.net.into(),
                tax: tax(&l.tax_lines),
            })
            .chain(
                parts
                    .shipping
                    .iter()
                    .filter(|s| {
                        s.net.minor() != 0 || s.tax_lines.iter().any(|t| t.amount.minor() != 0)
                    })
                    .map(|s| AllocationView {
                        part: "shipping".into(),
                        net: s.net.into(),
                        tax: tax(&s.tax_lines),
                    }),
            )
            .collect()
    }
}

#[derive(Debug, Serialize)]
pub struct LineItemView {
    pub product_id: String,
    pub name: String,
    pub quantity: u32,
    pub price: Amount,
    /// The line's share of the order's discounts.
    pub discount: Amount,
    pub tax_lines: Vec<TaxLineView>,
    /// How many of the line are in parcels, and in delivered ones.
    pub quantity_shipped: u32,
    pub quantity_delivered: u32,
    /// How many of the line came back (received returns).
    pub quantity_returned: u32,
}

#[derive(Debug, Serialize)]
pub struct TaxLineView {
    pub name: String,
    /// A decimal fraction as text (`"0.19"`), exact as the cart gave it.
    pub rate: String,
    pub amount: Amount,
}

#[derive(Debug, Serialize)]
pub struct ShippingView {
    pub method: String,
    pub name: String,
    pub amount: Amount,
    pub tax_lines: Vec<TaxLineView>,
}

#[derive(Debug, Serialize)]
pub struct DiscountView {
    pub code: String,
    pub amount: Amount,
}

pub fn tax_lines(taxes: &[TaxLine]) -> Vec<TaxLineView> {
    taxes
        .iter()
        .map(|t| TaxLineView {
            name: t.name.clone(),
            rate: t.rate.to_string(),
            amount: Amount(t.amount),
        })
        .collect()
}

/// A parcel as the order view lists it.
#[derive(Debug, Serialize)]
pub struct ShipmentSummary {
    pub shipment_id: String,
    pub status: &'static str,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub items: Vec<ShipmentLineView>,
}

#[derive(Debug, Serialize)]
pub struct ShipmentLineView {
    pub product_id: String,
    pub quantity: u32,
}

/// A parcel whole: `POST` and `GET /api/orders/{order_id}/shipments`.
#[derive(Debug, Serialize)]
pub struct ShipmentView {
    pub shipment_id: String,
    pub order_id: String,
    pub status: &'static str,
    pub items: Vec<ShipmentLineView>,
    pub carrier: Option<String>,
    pub servicelevel: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub label_url: Option<String>,
    pub cost: Option<CostView>,
    pub tracking_history: Vec<TrackingView>,
    pub created_at: String,
}

#[derive(Debug, Serialize)]
pub struct CostView {
    pub amount: Amount,
    pub currency: &'static str,
}

#[derive(Debug, Serialize)]
pub struct TrackingView {
    pub status: String,
    pub status_date: String,
    pub details: Option<String>,
    pub location: Option<String>,
}

fn lines_view(items: &[ShipmentLine]) -> Vec<ShipmentLineView> {
    items
        .iter()
        .map(|l| ShipmentLineView {
            product_id: l.product_id.clone(),
            quantity: l.quantity,
        })
        .collect()
}

fn shipping(pricing: &Pricing) -> Option<ShippingView> {
    pricing.shipping.as_ref().map(|s| ShippingView {
        method: s.method.clone(),
        name: s.name.clone(),
        amount: Amount(s.amount),
        tax_lines: tax_lines(&s.tax_lines),
    })
}

impl ShipmentView {
    pub fn of(order: &Order, s: &Shipment) -> ShipmentView {
        ShipmentView {
            shipment_id: s.shipment_id.to_string(),
            order_id: order.id.to_string(),
            status: s.status.as_str(),
            items: lines_view(&s.items),
            carrier: s.carrier.clone(),
            servicelevel: s.servicelevel.clone(),
            tracking_number: s.tracking_number.clone(),
            tracking_url: s.tracking_url.clone(),
            label_url: s.label_url.clone(),
            cost: s.cost.map(|c| CostView {
                amount: Amount(c),
                currency: c.currency().code(),
            }),
            tracking_history: s
                .tracking
                .iter()
                .map(|e| TrackingView {
                    status: e.status.clone(),
                    status_date: timestamp(e.status_date),
                    details: e.details.clone(),
                    location: e.location.clone(),
                })
                .collect(),
            created_at: timestamp(s.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AddressView {
    pub name: String,
    pub address: String,
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub zip: String,
    pub country: String,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        let a = &order.shipping_address;
        let totals = order.totals();
        OrderView {
            order_id: order.id.to_string(),
            user_id: order.user_id.clone(),
            status: order.status.as_str(),
            payment_status: order.payment_status.as_str(),
            shipping_status: order.shipping_status.as_str(),
            payment_method: order.payment_method.as_str(),
            total: Amount(order.total),
            currency: order.total.currency().code(),
            subtotal: Amount(totals.subtotal),
            discount_total: Amount(totals.discount_total),
            shipping_total: Amount(totals.shipping_total),
            tax_total: Amount(totals.tax_total),
            taxes_included: order.pricing.taxes_included,
            shipping: shipping(&order.pricing),
            discounts: order
                .pricing
                .discounts
                .iter()
                .map(|d| DiscountView {
                    code: d.code.clone(),
                    amount: Amount(d.amount),
                })
                .collect(),
            items: order
                .items
                .iter()
                .map(|i| LineItemView {
                    product_id: i.product_id.clone(),
                    name: i.name.clone(),
                    quantity: i.quantity,
                    price: Amount(i.price),
                    discount: Amount(i.discount),
                    tax_lines: tax_lines(&i.tax_lines),
                    quantity_shipped: order.quantity_shipped(&i.product_id).min(i.quantity),
                    quantity_delivered: order.quantity_delivered(&i.product_id).min(i.quantity),
                    quantity_returned: order.quantity_returned(&i.product_id).min(i.quantity),
                })
                .collect(),
            shipping_address: AddressView {
                name: a.name.clone(),
                address: a.address.clone(),
                city: a.city.clone(),
                state: a.state.clone(),
                zip: a.zip.clone(),
                country: a.country.clone(),
            },
            tracking_number: order.tracking_number.clone(),
            carrier: order.carrier.clone(),
            payment: order.payment.as_ref().map(|p| PaymentView {
                provider: "stripe",
                intent_id: p.intent_id.clone(),
                client_secret: None,
                amount_received: p.received.map(Amount),
                refunds: p
                    .refunds
                    .iter()
                    .map(|r| RefundView {
                        refund_id: r.refund_id.clone(),
                        amount: Amount(r.amount),
                        // An admin's reason is a note for staff: added for admins
                        // by `for_reader`, never in an event or the owner's view.
                        reason: None,
                        at: timestamp(r.at),
                        allocation: r.parts.as_ref().map(AllocationView::of).unwrap_or_default(),
                    })
                    .collect(),
                problem: p.problem.clone(),
            }),
            contact: None,
            cart_id: order.cart_id.clone(),
            created_at: timestamp(order.created_at),
            updated_at: timestamp(order.updated_at),
            version: order.version,
            shipments: order
                .shipments
                .iter()
                .map(|s| ShipmentSummary {
                    shipment_id: s.shipment_id.to_string(),
                    status: s.status.as_str(),
                    carrier: s.carrier.clone(),
                    tracking_number: s.tracking_number.clone(),
                    tracking_url: s.tracking_url.clone(),
                    items: lines_view(&s.items),
                })
                .collect(),
            label_failure: None,
            return_status: order.return_status().as_str(),
            returns: order.returns.iter().map(ReturnSummary::of).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ContactView {
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl OrderView {
    /// The order as `reader` may see it: with its contact for the owner and admins,
    /// without for anyone else (the fulfillment service), as in the events; and for
    /// the owner of an order still waiting for its payment, the intent's client
    /// secret, to pay it with.
    pub fn for_reader(order: &Order, reader: &Principal) -> OrderView {
        let mut view = OrderView::from(order);
        let owner = reader.user_id == order.user_id;
        if reader.admin || owner {
            view.contact = Some(ContactView {
                email: order.contact.email.clone(),
                phone: order.contact.phone.clone(),
            });
        }
        if let (true, Some(view), Some(payment)) =
            (reader.admin, view.payment.as_mut(), &order.payment)
        {
            for (shown, refund) in view.refunds.iter_mut().zip(&payment.refunds) {
                shown.reason = refund.reason.clone();
            }
        }
        if let (true, Some(failure)) = (reader.admin || reader.fulfillment, &order.label_failure) {
            view.label_failure = Some(LabelFailureView {
                messages: failure.messages.clone(),
                at: timestamp(failure.at),
            });
        }
        let waiting = matches!(
            order.payment_status,
            PaymentStatus::Unpaid | PaymentStatus::Failed
        );
        if let (true, true, Some(view), Some(payment)) =
            (owner, waiting, view.payment.as_mut(), &order.payment)
        {
            view.client_secret = Some(payment.client_secret.clone());
        }
        view
    }
}

/// One change in the audit trail. `from` is the status before it (none for creation).
#[derive(Debug, Serialize)]
pub struct HistoryView {
    pub version: u64,
    pub at: String,
    pub actor: String,
    pub from: Option<&'static str>,
    pub to: &'static str,
    /// Set when the change moved the shipping status (fulfillment, shipping, delivery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_status: Option<&'static str>,
    /// Set when the change moved the payment status (payments, refunds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Who reads a history: staff (admins, the fulfillment service) see every actor's
/// `sub` and every reason; the customer sees roles (`you`, `support`, `fulfillment`)
/// and only the reasons it gave itself: staff notes and stock levels are internal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Staff,
    Customer,
}

pub fn history(order: &Order, reader: Reader) -> Vec<HistoryView> {
    let mut previous = None;
    order
        .history
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let (actor, reason) = match reader {
                Reader::Staff => (entry.actor.clone(), entry.reason.clone()),
                Reader::Customer => match entry.role {
                    Role::Owner => ("you".to_string(), entry.reason.clone()),
                    Role::Admin => ("support".to_string(), None),
                    Role::Fulfillment => ("fulfillment".to_string(), None),
                    // A decline's reason is the customer's to see; so is the expiry's.
                    Role::Payments | Role::System => {
                        (entry.role.as_str().to_string(), entry.reason.clone())
                    }
                },
            };
            let view = HistoryView {
                version: i as u64 + 1,
                at: timestamp(entry.at),
                actor,
                from: previous,
                to: entry.status.as_str(),
                shipping_status: entry.shipping_status.map(|s| s.as_str()),
                payment_status: entry.payment_status.map(|s| s.as_str()),
                reason,
            };
            previous = Some(entry.status.as_str());
            view
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct ReturnLineView {
    pub product_id: String,
    pub quantity: u32,
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub fn lines(items: &[ReturnLine]) -> Vec<ReturnLineView> {
    items
        .iter()
        .map(|l| ReturnLineView {
            product_id: l.product_id.clone(),
            quantity: l.quantity,
            reason: l.reason.as_str(),
            note: l.note.clone(),
        })
        .collect()
}

/// A return as the order view and the events list it.
#[derive(Debug, Serialize)]
pub struct ReturnSummary {
    pub return_id: String,
    pub status: &'static str,
    pub items: Vec<ReturnLineView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<&'static str>,
    /// The return label's carrier, tracking number and where its parcel is (its link
    /// to print is in `GET …/returns`, not in every event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<ReturnLabelSummary>,
}

#[derive(Debug, Serialize)]
pub struct ReturnLabelSummary {
    pub carrier: String,
    pub tracking_number: String,
    pub status: &'static str,
}

impl ReturnSummary {
    pub fn of(r: &Return) -> ReturnSummary {
        ReturnSummary {
            return_id: r.return_id.to_string(),
            status: r.status.as_str(),
            items: lines(&r.items),
            refund_status: r.receipt.as_ref().map(|c| c.refund_state.as_str()),
            label: r.label.as_ref().map(|l| ReturnLabelSummary {
                carrier: l.carrier.clone(),
                tracking_number: l.tracking_number.clone(),
                status: l.status.as_str(),
            }),
        }
    }
}
