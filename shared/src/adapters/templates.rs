//! The message templates (`shared/templates/`, compiled into the binary), rendered
//! with minijinja: per notice a subject, a plain-text and an HTML body (both extend
//! a layout with the order's lines and total), and for shipped and delivered an SMS.
//! HTML is escaped (`.html` templates auto-escape); text is not.

use minijinja::Environment;
use serde::Serialize;

use crate::domain::invoice::Invoice;
use crate::domain::notification::Notice;
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
                tracking_number: order.tracking_number.as_deref(),
                carrier: order.carrier.as_deref(),
            },
            invoice: invoice.map(|i| InvoiceContext {
                number: i.number.to_string(),
            }),
            refund: match notice {
                Notice::Refunded { partial } => Some(RefundContext { partial: *partial }),
                _ => None,
            },
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
    tracking_number: Option<&'a str>,
    carrier: Option<&'a str>,
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
}

impl MessageTemplates for Templates {
    fn email(
        &self,
        notice: &Notice,
        order: &Order,
        invoice: Option<&Invoice>,
    ) -> Result<RenderedEmail, TemplateError> {
        let name = notice.template();
        let subject_name = format!("{name}.subject.txt");
        let subject = self.render(&subject_name, &self.context(notice, order, invoice, ""))?;
        // One line: a header cannot hold a line break.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let context = self.context(notice, order, invoice, &subject);
        Ok(RenderedEmail {
            text: self.render(&format!("{name}.txt"), &context)?,
            html: self.render(&format!("{name}.html"), &context)?,
            subject,
        })
    }

    fn text(&self, notice: &Notice, order: &Order) -> Result<String, TemplateError> {
        let name = format!("{}.sms.txt", notice.template());
        let text = self.render(&name, &self.context(notice, order, None, ""))?;
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
}
