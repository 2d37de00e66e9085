//! The message templates (`shared/templates/`, compiled into the binary), rendered
//! with minijinja: per notice a subject, a plain-text and an HTML body (both extend
//! a layout with the order's lines and total), and for shipped and delivered an SMS.
//! A return's messages show the return (its items, label, reason, refund) too.
//! HTML is escaped (`.html` templates auto-escape); text is not.

use minijinja::Environment;
use serde::Serialize;

use crate::domain::billing::CreditNote;
use crate::domain::fulfillment::returns::{Return, ReturnId};
use crate::domain::invoice::Invoice;
use crate::domain::notification::{Notice, ReturnNotice};
use crate::domain::{Money, Order};
use crate::ports::{MessageTemplates, RenderedEmail, TemplateError};

macro_rules! templates {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),+]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "layout.txt",
    "layout.html",
    "placed.subject.txt",
    "placed.txt",
    "placed.html",
    "confirmed.subject.txt",
    "confirmed.txt",
    "confirmed.html",
    "shipped.subject.txt",
    "shipped.txt",
    "shipped.html",
    "shipped.sms.txt",
    "delivered.subject.txt",
    "delivered.txt",
    "delivered.html",
    "delivered.sms.txt",
    "cancelled.subject.txt",
    "cancelled.txt",
    "cancelled.html",
    "refunded.subject.txt",
    "refunded.txt",
    "refunded.html",
    "return_requested.subject.txt",
    "return_requested.txt",
    "return_requested.html",
    "return_approved.subject.txt",
    "return_approved.txt",
    "return_approved.html",
    "return_declined.subject.txt",
    "return_declined.txt",
    "return_declined.html",
    "return_cancelled.subject.txt",
    "return_cancelled.txt",
    "return_cancelled.html",
    "return_received.subject.txt",
    "return_received.txt",
    "return_received.html",
];

pub struct Templates {
    env: Environment<'static>,
    /// Signs every message (the seller's name).
    shop: String,
}

impl Templates {
    /// Every template parsed once; a syntax error is a bug caught by the unit tests.
    pub fn new(shop: impl Into<String>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).map_err(|e| TemplateError {
                template: (*name).to_string(),
                why: e.to_string(),
            })?;
        }
        Ok(Templates {
            env,
            shop: shop.into(),
        })
    }

    fn render(&self, name: &str, context: &Context<'_>) -> Result<String, TemplateError> {
        let error = |e: minijinja::Error| TemplateError {
            template: name.to_string(),
            why: e.to_string(),
        };
        self.env
            .get_template(name)
            .map_err(error)?
            .render(minijinja::value::Serde(context))
            .map_err(error)
    }

    fn context<'a>(
        &'a self,
        notice: &Notice,
        order: &'a Order,
        invoice: Option<&'a Invoice>,
        credit_note: Option<&'a CreditNote>,
        ret: Option<&'a Return>,
        subject: &'a str,
    ) -> Context<'a> {
        let currency = order.total.currency().code();
        let a = &order.shipping_address;
        let totals = order.totals();
        // Each money line shows only when the order has it, so a plain order's
        // message is what it always was.
        let shown = |m: Money| (m.minor() != 0).then(|| m.to_decimal_string());
        Context {
            shop: &self.shop,
            // The shipping name is whatever the create said: a greeting only when the
            // mail goes to the account's own verified address, never to a stranger.
            customer: order.contact.email_verified.then_some(a.name.as_str()),
            subject,
            order: OrderContext {
                order_id: order.id.as_str(),
                status: order.status.as_str(),
                payment_status: order.payment_status.as_str(),
                total: order.total.to_decimal_string(),
                currency,
                subtotal: totals.subtotal.to_decimal_string(),
                discount_total: shown(totals.discount_total),
                shipping_total: order
                    .pricing
                    .shipping
                    .as_ref()
                    .map(|s| s.amount.to_decimal_string()),
                tax_total: shown(totals.tax_total),
                taxes_included: order.pricing.taxes_included,
                items: order
                    .items
                    .iter()
                    .map(|i| LineContext {
                        name: &i.name,
                        quantity: i.quantity,
                        price: i.price.to_decimal_string(),
                    })
                    .collect(),
                shipping_address: AddressContext {
                    name: &a.name,
                    address: &a.address,
                    city: &a.city,
                    zip: &a.zip,
                    country: &a.country,
                },
                parcels: parcels(order),
            },
            invoice: invoice.map(|i| InvoiceContext {
                number: i.number.to_string(),
            }),
            refund: match notice {
                Notice::Refunded { partial } => Some(RefundContext {
                    partial: *partial,
                    credit_note: credit_note.map(|c| CreditNoteContext {
                        number: c.number.to_string(),
                        total: c.draft.total.to_decimal_string(),
                    }),
                }),
                _ => None,
            },
            ret: ret.map(|r| {
                let received = *notice == Notice::Return(ReturnNotice::Received);
                return_context(order, r, received)
            }),
        }
    }
}

#[derive(Serialize)]
struct Context<'a> {
    shop: &'a str,
    customer: Option<&'a str>,
    subject: &'a str,
    order: OrderContext<'a>,
    invoice: Option<InvoiceContext>,
    refund: Option<RefundContext>,
    /// The return a return's message is about.
    ret: Option<ReturnContext<'a>>,
}

#[derive(Serialize)]
struct ReturnContext<'a> {
    return_id: &'a str,
    items: Vec<ReturnLineContext<'a>>,
    label: Option<ReturnLabelContext<'a>>,
    decline_reason: Option<&'a str>,
    /// What its receipt gives back, and where that money is: `refunded`, `pending`
    /// (on its way), `deferred` (after inspection), `refund_due` (paid by the shop by
    /// hand), `none`.
    refund: Option<ReturnRefundContext>,
}

#[derive(Serialize)]
struct ReturnLineContext<'a> {
    name: &'a str,
    quantity: u32,
    reason: &'a str,
}

#[derive(Serialize)]
struct ReturnLabelContext<'a> {
    carrier: &'a str,
    tracking_number: &'a str,
    label_url: Option<&'a str>,
    tracking_url: Option<&'a str>,
}

#[derive(Serialize)]
struct ReturnRefundContext {
    amount: String,
    state: &'static str,
}

/// A link in an email only to a web page (never `javascript:` and the like).
fn web_link(url: Option<&str>) -> Option<&str> {
    url.filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}

/// `received`: the message of its receipt, which lists what was received; the other
/// steps' list what was asked for, with why (the stored return may be further on).
fn return_context<'a>(order: &'a Order, r: &'a Return, received: bool) -> ReturnContext<'a> {
    let items = match r.receipt.as_ref().filter(|_| received) {
        Some(receipt) => receipt
            .lines
            .iter()
            .filter(|l| l.quantity > 0)
            .map(|l| (l.product_id.as_str(), l.quantity, None))
            .collect::<Vec<_>>(),
        None => r
            .items
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity, Some(l.reason.as_str())))
            .collect(),
    };
    ReturnContext {
        return_id: r.return_id.as_str(),
        items: items
            .into_iter()
            .map(|(product_id, quantity, reason)| ReturnLineContext {
                name: order
                    .items
                    .iter()
                    .find(|i| i.product_id == product_id)
                    .map_or(product_id, |i| i.name.as_str()),
                quantity,
                reason: reason.unwrap_or_default(),
            })
            .collect(),
        label: r.label.as_ref().map(|l| ReturnLabelContext {
            carrier: &l.carrier,
            tracking_number: &l.tracking_number,
            label_url: web_link(l.label_url.as_deref()),
            tracking_url: l
                .tracking_url
                .as_deref()
                .filter(|u| u.starts_with("https://")),
        }),
        decline_reason: r.decline_reason.as_deref(),
        refund: r.receipt.as_ref().map(|c| ReturnRefundContext {
            amount: c.refund.to_decimal_string(),
            state: c.refund_state.as_str(),
        }),
    }
}

#[derive(Serialize)]
struct OrderContext<'a> {
    order_id: &'a str,
    status: &'a str,
    payment_status: &'a str,
    total: String,
    currency: &'a str,
    subtotal: String,
    discount_total: Option<String>,
    shipping_total: Option<String>,
    tax_total: Option<String>,
    taxes_included: bool,
    items: Vec<LineContext<'a>>,
    shipping_address: AddressContext<'a>,
    /// Every parcel the customer can follow, each with its tracking link when the
    /// carrier has one: the shipped message lists them all (carriers are Shippo's
    /// lower-case tokens; the templates show them in capitals, `UPS`).
    parcels: Vec<ParcelContext<'a>>,
}

#[derive(Serialize)]
struct ParcelContext<'a> {
    carrier: Option<&'a str>,
    tracking_number: &'a str,
    tracking_url: Option<&'a str>,
}

/// The order's parcels with a tracking number; an order shipped before parcels existed
/// has its one number on the order.
fn parcels(order: &Order) -> Vec<ParcelContext<'_>> {
    let parcels: Vec<ParcelContext<'_>> = order
        .shipments
        .iter()
        .filter_map(|s| {
            Some(ParcelContext {
                carrier: s.carrier.as_deref(),
                tracking_number: s.tracking_number.as_deref()?,
                // A link in an email only to a web page (never `javascript:` and the like).
                tracking_url: s
                    .tracking_url
                    .as_deref()
                    .filter(|url| url.starts_with("https://")),
            })
        })
        .collect();
    if !parcels.is_empty() {
        return parcels;
    }
    order
        .tracking_number
        .as_deref()
        .map(|number| ParcelContext {
            carrier: order.carrier.as_deref(),
            tracking_number: number,
            tracking_url: None,
        })
        .into_iter()
        .collect()
}

#[derive(Serialize)]
struct LineContext<'a> {
    name: &'a str,
    quantity: u32,
    price: String,
}

#[derive(Serialize)]
struct AddressContext<'a> {
    name: &'a str,
    address: &'a str,
    city: &'a str,
    zip: &'a str,
    country: &'a str,
}

#[derive(Serialize)]
struct InvoiceContext {
    number: String,
}

#[derive(Serialize)]
struct RefundContext {
    partial: bool,
    /// The credit note that documents the refund (attached to the email).
    credit_note: Option<CreditNoteContext>,
}

#[derive(Serialize)]
struct CreditNoteContext {
    number: String,
    /// What was refunded, in the order's currency.
    total: String,
}

impl Templates {
    fn render_email(
        &self,
        notice: &Notice,
        order: &Order,
        invoice: Option<&Invoice>,
        credit_note: Option<&CreditNote>,
        ret: Option<&Return>,
    ) -> Result<RenderedEmail, TemplateError> {
        let name = notice.template();
        let subject_name = format!("{name}.subject.txt");
        let subject = self.render(
            &subject_name,
            &self.context(notice, order, invoice, credit_note, ret, ""),
        )?;
        // One line: a header cannot hold a line break.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let context = self.context(notice, order, invoice, credit_note, ret, &subject);
        Ok(RenderedEmail {
            text: self.render(&format!("{name}.txt"), &context)?,
            html: self.render(&format!("{name}.html"), &context)?,
            subject,
        })
    }
}

impl MessageTemplates for Templates {
    fn email(
        &self,
        notice: &Notice,
        order: &Order,
        invoice: Option<&Invoice>,
    ) -> Result<RenderedEmail, TemplateError> {
        self.render_email(notice, order, invoice, None, None)
    }

    fn refund_email(
        &self,
        notice: &Notice,
        order: &Order,
        credit_note: &CreditNote,
    ) -> Result<RenderedEmail, TemplateError> {
        self.render_email(notice, order, None, Some(credit_note), None)
    }

    fn return_email(
        &self,
        notice: &Notice,
        order: &Order,
        return_id: &ReturnId,
    ) -> Result<RenderedEmail, TemplateError> {
        let ret = order.return_of(return_id).ok_or_else(|| TemplateError {
            template: notice.template().to_string(),
            why: format!("order {} has no return {return_id}", order.id),
        })?;
        self.render_email(notice, order, None, None, Some(ret))
    }

    fn text(&self, notice: &Notice, order: &Order) -> Result<String, TemplateError> {
        let name = format!("{}.sms.txt", notice.template());
        let text = self.render(&name, &self.context(notice, order, None, None, None, ""))?;
        Ok(text.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{
        Contact, Currency, LineItem, Money, OrderId, OrderStatus, PaymentMethod, PaymentStatus,
        ShippingAddress, ShippingStatus,
    };

    fn order() -> Order {
        let usd = Currency::from_code("USD").unwrap();
        Order {
            id: OrderId::for_cart("abc123"),
            user_id: "user789".into(),
            cart_id: "abc123".into(),
            status: OrderStatus::Shipped,
            payment_status: PaymentStatus::Paid,
            shipping_status: ShippingStatus::Shipped,
            payment_method: PaymentMethod::CreditCard,
            items: vec![LineItem {
                product_id: "p001".into(),
                name: "Cable <USB> & more".into(),
                quantity: 2,
                price: Money::from_minor(1000, usd),
                discount: Money::zero(usd),
                tax_lines: vec![],
            }],
            pricing: Default::default(),
            total: Money::from_minor(2000, usd),
            shipping_address: ShippingAddress {
                name: "Jane Doe".into(),
                address: "123 Main St".into(),
                city: "New York".into(),
                state: Some("NY".into()),
                zip: "10001".into(),
                country: "US".into(),
            },
            tracking_number: Some("1Z999AA10123456784".into()),
            carrier: Some("UPS".into()),
            payment: None,
            contact: Contact::default(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            version: 4,
            history: vec![],
            shipments: vec![],
            label_failure: None,
            returns: vec![],
        }
    }

    fn email_of(order: &Order) -> RenderedEmail {
        Templates::new("The Shop")
            .unwrap()
            .email(&Notice::Confirmed, order, None)
            .unwrap()
    }

    #[test]
    fn messages_show_the_money_lines_an_order_has() {
        use crate::domain::billing::{Discount, Pricing, ShippingLine};
        let mut order = order();
        let usd = order.total.currency();
        order.pricing = Pricing {
            taxes_included: true,
            shipping: Some(ShippingLine {
                method: "ups".into(),
                name: "UPS".into(),
                amount: Money::from_minor(490, usd),
                tax_lines: vec![],
            }),
            discounts: vec![Discount {
                code: "WELCOME".into(),
                amount: Money::from_minor(400, usd),
            }],
        };
        order.items[0].discount = Money::from_minor(400, usd);
        order.items[0].tax_lines = vec![crate::domain::billing::TaxLine {
            name: "Sales tax".into(),
            rate: crate::domain::billing::TaxRate::parse("0.08").unwrap(),
            amount: Money::from_minor(119, usd),
        }];
        order.total = Money::from_minor(2090, usd);
        let email = email_of(&order);
        for line in [
            "Subtotal: 20.00 USD",
            "Discount: -4.00 USD",
            "Shipping: 4.90 USD",
            "Taxes included: 1.19 USD",
            "Total: 20.90 USD",
        ] {
            assert!(email.text.contains(line), "{line:?} in:\n{}", email.text);
        }
        assert!(email.html.contains("Taxes included"), "{}", email.html);
    }

    #[test]
    fn every_notice_renders_naming_the_order() {
        let templates = Templates::new("The Shop").unwrap();
        let order = order();
        for notice in [
            Notice::Placed,
            Notice::Confirmed,
            Notice::Shipped,
            Notice::Delivered,
            Notice::Cancelled,
            Notice::Refunded { partial: true },
            Notice::Refunded { partial: false },
        ] {
            let email = templates.email(&notice, &order, None).unwrap();
            for part in [&email.subject, &email.text, &email.html] {
                assert!(part.contains(order.id.as_str()), "{notice:?}: {part}");
            }
            assert!(!email.subject.contains('\n'));
            assert!(email.text.contains("Total: 20.00 USD"), "{}", email.text);
            // Text as typed in the text part, escaped in the HTML part.
            assert!(email.text.contains("Cable <USB> & more"));
            assert!(
                email.html.contains("Cable &lt;USB&gt; &amp; more"),
                "{}",
                email.html
            );
        }
        // A plain order's message has no money lines but its total.
        assert!(!email_of(&order).text.contains("Subtotal"));
        let shipped = templates.email(&Notice::Shipped, &order, None).unwrap();
        assert!(shipped.text.contains("Tracking number: 1Z999AA10123456784"));
        assert!(shipped.text.contains("with UPS"));
        let sms = templates.text(&Notice::Shipped, &order).unwrap();
        assert_eq!(
            sms,
            format!(
                "The Shop: order {} has shipped with UPS. Tracking: 1Z999AA10123456784",
                order.id
            )
        );
    }

    #[test]
    fn a_returns_messages_show_its_items_label_reason_and_refund() {
        use crate::domain::fulfillment::ShipmentStatus;
        use crate::domain::fulfillment::returns::{
            ReturnLabel, ReturnLine, ReturnReason, ReturnStatus, Step,
        };
        let mut order = order();
        let step = Step {
            at: OffsetDateTime::UNIX_EPOCH,
            actor: "support".into(),
            role: crate::domain::Role::Admin,
        };
        let id = ReturnId::for_request("ORD1", "jane", "k");
        order.returns.push(Return {
            return_id: id.clone(),
            items: vec![ReturnLine {
                product_id: "p001".into(),
                quantity: 1,
                reason: ReturnReason::WrongItem,
                note: None,
            }],
            note: None,
            status: ReturnStatus::Approved,
            requested: step.clone(),
            approved: Some(step.clone()),
            declined: None,
            decline_reason: Some("Worn <shoes> & socks".into()),
            cancelled: None,
            received: None,
            receipt: None,
            label: Some(ReturnLabel {
                carrier: "usps".into(),
                tracking_number: "9400111".into(),
                tracking_url: Some("javascript:alert(1)".into()),
                label_url: Some("https://shippo.example/label.pdf".into()),
                transaction_id: "t1".into(),
                status: ShipmentStatus::LabelCreated,
                tracking: vec![],
            }),
            fingerprint: None,
        });
        let templates = Templates::new("The Shop").unwrap();
        let email = |step| {
            templates
                .return_email(&Notice::Return(step), &order, &id)
                .unwrap()
        };
        let approved = email(ReturnNotice::Approved);
        assert!(
            approved
                .text
                .contains("  1 x Cable <USB> & more (wrong item)\n"),
            "{}",
            approved.text
        );
        assert!(
            approved.text.contains(
                "label: https://shippo.example/label.pdf\nTracking number: 9400111 (USPS)\n"
            ),
            "{}",
            approved.text
        );
        assert!(!approved.html.contains("javascript:"), "{}", approved.html);
        let declined = email(ReturnNotice::Declined);
        assert!(declined.text.contains("Reason: Worn <shoes> & socks"));
        assert!(
            declined
                .html
                .contains("Reason: Worn &lt;shoes&gt; &amp; socks")
        );
        for step in [
            ReturnNotice::Requested,
            ReturnNotice::Cancelled,
            ReturnNotice::Received,
        ] {
            let rendered = email(step);
            for part in [&rendered.subject, &rendered.text, &rendered.html] {
                assert!(part.contains(order.id.as_str()), "{step:?}: {part}");
            }
        }
        let received = email(ReturnNotice::Received);
        assert!(
            received.text.contains("nothing to refund"),
            "{}",
            received.text
        );
    }

    #[test]
    fn the_shipped_message_lists_every_parcel_with_its_tracking_link() {
        use crate::domain::fulfillment::{Shipment, ShipmentId, ShipmentLine, ShipmentStatus};
        let parcel = |id: &str, carrier: &str, number: &str, url: &str| Shipment {
            shipment_id: ShipmentId::parse(id).unwrap(),
            items: vec![ShipmentLine {
                product_id: "p001".into(),
                quantity: 1,
            }],
            carrier: Some(carrier.into()),
            servicelevel: None,
            tracking_number: Some(number.into()),
            tracking_url: Some(url.into()),
            label_url: None,
            cost: None,
            status: ShipmentStatus::InTransit,
            tracking: vec![],
            created_at: OffsetDateTime::UNIX_EPOCH,
            fingerprint: None,
            label_transaction: None,
        };
        let mut order = order();
        order.shipments = vec![
            parcel(
                "SHP0000000000000001",
                "usps",
                "9400111899223197428490",
                "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223197428490",
            ),
            parcel(
                "SHP0000000000000002",
                "ups",
                "1Z999AA10123456784",
                "javascript:alert(1)",
            ),
        ];
        let templates = Templates::new("The Shop").unwrap();
        let email = templates.email(&Notice::Shipped, &order, None).unwrap();
        assert!(
            email.text.contains("is on its way in 2 parcels."),
            "{}",
            email.text
        );
        assert!(email.text.contains(
            "Tracking number: 9400111899223197428490 (USPS) https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223197428490"
        ), "{}", email.text);
        assert!(
            email
                .text
                .contains("Tracking number: 1Z999AA10123456784 (UPS)\n"),
            "{}",
            email.text
        );
        assert!(!email.html.contains("javascript:"), "{}", email.html);
        assert!(
            // Escaped as HTML escapes an attribute (`/` as `&#x2f;`); a browser reads it back.
            email
                .html
                .contains("<a href=\"https:&#x2f;&#x2f;tools.usps.com&#x2f;go&#x2f;"),
            "{}",
            email.html
        );
        let sms = templates.text(&Notice::Shipped, &order).unwrap();
        assert!(
            sms.ends_with("has shipped. Tracking: 9400111899223197428490, 1Z999AA10123456784"),
            "{sms}"
        );
    }
}
