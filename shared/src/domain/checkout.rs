//! Turning a validated checkout request and its cart into a pending order.

use time::OffsetDateTime;

use super::billing::Totals;
use super::billing::cart::{self as priced, CartCharges, CartTaxLine, MemberError};
use super::contact::{Contact, ContactInput};
use super::countries::is_iso_3166_alpha2;
use super::lifecycle::Role;

use super::money::{Currency, Money, MoneyError};
use super::order::{
    HistoryEntry, LineItem, Order, OrderId, OrderStatus, PaymentMethod, PaymentStatus,
    ShippingAddress, ShippingStatus,
};
use super::validation::{FieldErrors, MAX_ID_LEN, check_text, is_invisible_format, is_valid_id};

/// The checkout request's fields as they arrived, before any check.
#[derive(Debug, Clone, Default)]
pub struct CheckoutInput {
    pub cart_id: Option<String>,
    pub user_id: Option<String>,
    pub payment_method: Option<String>,
    pub shipping_address: Option<AddressInput>,
    pub contact: Option<ContactInput>,
}

#[derive(Debug, Clone, Default)]
pub struct AddressInput {
    pub name: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
}

/// A checkout request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub cart_id: String,
    /// Who the order is for, when the request names them.
    pub user_id: Option<String>,
    pub payment_method: PaymentMethod,
    pub shipping_address: ShippingAddress,
    /// The request's `contact`; a field it leaves out comes from the token.
    pub contact: Contact,
}

fn required<'a>(
    errors: &mut FieldErrors,
    field: &str,
    value: &'a Option<String>,
) -> Option<&'a str> {
    match value {
        Some(v) => Some(v.as_str()),
        None => {
            errors.add(field, "is required");
            None
        }
    }
}

impl CheckoutInput {
    pub fn validate(self) -> Result<Checkout, FieldErrors> {
        let mut errors = FieldErrors::default();

        if let Some(cart_id) = required(&mut errors, "cart_id", &self.cart_id) {
            if !is_valid_id(cart_id) {
                errors.add(
                    "cart_id",
                    format!("must be 1 to {MAX_ID_LEN} printable characters without spaces"),
                );
            } else if is_dot_segment(cart_id) {
                // In the cart API's URL, `..` would name another resource.
                errors.add("cart_id", "must not be `.` or `..`");
            }
        }
        if let Some(user_id) = &self.user_id
            && !is_valid_id(user_id)
        {
            errors.add(
                "user_id",
                format!("must be 1 to {MAX_ID_LEN} printable characters without spaces"),
            );
        }
        let payment_method = required(&mut errors, "payment_method", &self.payment_method)
            .and_then(|m| {
                let parsed = PaymentMethod::parse(m);
                if parsed.is_none() {
                    let known: Vec<_> = PaymentMethod::ALL.iter().map(|m| m.as_str()).collect();
                    errors.add(
                        "payment_method",
                        format!("must be one of {}", known.join(", ")),
                    );
                }
                parsed
            });
        let address = match &self.shipping_address {
            None => {
                errors.add("shipping_address", "is required");
                None
            }
            Some(a) => validate_address(&mut errors, a),
        };
        let contact = self
            .contact
            .as_ref()
            .map(|c| c.validate(&mut errors))
            .unwrap_or_default();

        match (self.cart_id, payment_method, address) {
            (Some(cart_id), Some(payment_method), Some(shipping_address)) if errors.is_empty() => {
                Ok(Checkout {
                    cart_id,
                    user_id: self.user_id,
                    payment_method,
                    shipping_address,
                    contact,
                })
            }
            _ => Err(errors),
        }
    }
}

/// `.` and `..` mean "here" and "up" in a URL path, even percent-encoded.
pub fn is_dot_segment(id: &str) -> bool {
    matches!(id, "." | "..")
}

fn validate_address(errors: &mut FieldErrors, a: &AddressInput) -> Option<ShippingAddress> {
    let before = errors.0.len();
    let mut text = |field: &str, value: &Option<String>, max: usize| -> String {
        let path = format!("shipping_address.{field}");
        match required(errors, &path, value) {
            Some(v) => {
                check_text(errors, &path, v, max);
                v.trim().to_string()
            }
            None => String::new(),
        }
    };
    let name = text("name", &a.name, 100);
    let address = text("address", &a.address, 200);
    let city = text("city", &a.city, 100);
    let zip = text("zip", &a.zip, 20);
    let country = required(errors, "shipping_address.country", &a.country)
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    if a.country.is_some() && !is_iso_3166_alpha2(&country) {
        errors.add(
            "shipping_address.country",
            "must be an ISO 3166-1 alpha-2 code such as US",
        );
    }
    let state = a.state.as_ref().map(|s| {
        check_text(errors, "shipping_address.state", s, 100);
        s.trim().to_string()
    });
    (errors.0.len() == before).then_some(ShippingAddress {
        name,
        address,
        city,
        state,
        zip,
        country,
    })
}

/// A cart as the cart service describes it; prices are decimal text, exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    pub cart_id: String,
    pub user_id: String,
    pub currency: String,
    pub items: Vec<CartLine>,
    /// Shipping, discounts and whether prices include taxes (all optional).
    pub charges: CartCharges,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartLine {
    pub product_id: String,
    pub name: String,
    pub quantity: i64,
    pub price: String,
    /// The line's own currency, when the cart service sends one; it must be the cart's.
    pub currency: Option<String>,
    pub tax_lines: Vec<CartTaxLine>,
}

/// Why a cart cannot become an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartProblem {
    #[error("cart {0} is empty")]
    Empty(String),
    #[error("cart {0} belongs to another user")]
    NotYours(String),
    #[error("cart currency `{0}` is not one this service prices in")]
    UnknownCurrency(String),
    #[error("cart line {line}: {message}")]
    BadLine { line: usize, message: String },
    #[error("cart has more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("order total is too large")]
    TotalTooLarge,
    /// A money member (shipping, discounts, taxes) that cannot be priced.
    #[error("cart member {member}: {message}")]
    BadMember { member: String, message: String },
}

impl From<MemberError> for CartProblem {
    fn from(e: MemberError) -> Self {
        CartProblem::BadMember {
            member: e.member,
            message: e.message,
        }
    }
}

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 10_000;
pub const MAX_NAME_LEN: usize = 200;
/// The dearest unit price, in major units. With the line and quantity bounds it keeps
/// every total under 2^53 minor units, so a JSON client reading it as a double
/// reads it exactly.
pub const MAX_UNIT_PRICE: i64 = 1_000_000;

impl Checkout {
    /// Prices and totals come from the cart alone, computed in minor units.
    /// `customer` is the user the order is for.
    pub fn place(
        self,
        cart: &Cart,
        customer: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Order, CartProblem> {
        if cart.user_id != customer {
            return Err(CartProblem::NotYours(cart.cart_id.clone()));
        }
        if cart.items.is_empty() {
            return Err(CartProblem::Empty(cart.cart_id.clone()));
        }
        if cart.items.len() > MAX_LINES {
            return Err(CartProblem::TooManyLines);
        }
        let currency = Currency::from_code(&cart.currency)
            .ok_or_else(|| CartProblem::UnknownCurrency(cart.currency.clone()))?;

        let mut items: Vec<LineItem> = Vec::with_capacity(cart.items.len());
        let mut total = Money::zero(currency);
        for (index, line) in cart.items.iter().enumerate() {
            let bad = |message: String| CartProblem::BadLine {
                line: index,
                message,
            };
            let item = line_item(line, currency).map_err(bad)?;
            // Lines of one product are reserved as one: the quantity bound is per
            // product, or splitting a line would get round it.
            let of_product: i64 = items
                .iter()
                .filter(|i| i.product_id == item.product_id)
                .map(|i| i64::from(i.quantity))
                .sum::<i64>()
                + i64::from(item.quantity);
            if of_product > MAX_QUANTITY {
                return Err(bad(format!(
                    "quantity of product {} across lines must be at most {MAX_QUANTITY}",
                    item.product_id
                )));
            }
            total = item
                .price
                .checked_times(item.quantity)
                .and_then(|subtotal| total.checked_add(subtotal))
                .ok_or(CartProblem::TotalTooLarge)?;
            items.push(item);
        }
        let pricing = priced::pricing(&cart.charges, currency, total)?;
        for (index, (item, line)) in items.iter_mut().zip(&cart.items).enumerate() {
            let member = format!("items[{index}].tax_lines");
            item.tax_lines = priced::tax_lines(&member, &line.tax_lines, item.value())?;
        }
        let values: Vec<Money> = items.iter().map(LineItem::value).collect();
        for (item, discount) in items
            .iter_mut()
            .zip(priced::line_discounts(&pricing, &values))
        {
            item.discount = discount;
        }
        let totals = Totals::of(
            items.iter().map(|i| (i.value(), i.tax_lines.as_slice())),
            &pricing,
            currency,
        );
        // Kept below 2^53 minor units, so a JSON client reading it as a double reads
        // it exactly (taxes and shipping cannot push the dearest cart past it).
        if totals.total.minor() >= 1 << 53 {
            return Err(CartProblem::TotalTooLarge);
        }

        Ok(Order {
            id: OrderId::for_cart(&self.cart_id),
            user_id: customer.to_string(),
            cart_id: self.cart_id,
            status: OrderStatus::Pending,
            payment_status: PaymentStatus::Unpaid,
            shipping_status: ShippingStatus::NotStarted,
            payment_method: self.payment_method,
            items,
            pricing,
            total: totals.total,
            shipping_address: self.shipping_address,
            tracking_number: None,
            carrier: None,
            payment: None,
            contact: self.contact,
            created_at: now,
            updated_at: now,
            version: 1,
            history: vec![HistoryEntry {
                at: now,
                actor: actor.to_string(),
                // Only an admin places an order for someone else.
                role: if actor == customer {
                    Role::Owner
                } else {
                    Role::Admin
                },
                status: OrderStatus::Pending,
                shipping_status: None,
                payment_status: None,
                reason: None,
            }],
            shipments: Vec::new(),
            label_failure: None,
            returns: Vec::new(),
        })
    }
}

fn line_item(line: &CartLine, currency: Currency) -> Result<LineItem, String> {
    if !is_valid_id(&line.product_id) {
        return Err("product_id is not a valid id".into());
    }
    let name = line.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(format!("name must be 1 to {MAX_NAME_LEN} characters"));
    }
    // A name is shown to people and sent to integrators: no line breaks, escapes or
    // invisible format characters smuggled in by a cart.
    if name
        .chars()
        .any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err("name must not contain control characters".into());
    }
    if !(1..=MAX_QUANTITY).contains(&line.quantity) {
        return Err(format!("quantity must be between 1 and {MAX_QUANTITY}"));
    }
    if let Some(code) = &line.currency
        && code != currency.code()
    {
        return Err(format!(
            "currency {code} is not the cart's currency {}",
            currency.code()
        ));
    }
    let price = Money::parse(&line.price, currency).map_err(|e: MoneyError| e.to_string())?;
    let most = 10i64.pow(currency.minor_digits()) * MAX_UNIT_PRICE;
    if price.minor() > most {
        return Err(format!(
            "price must be at most {MAX_UNIT_PRICE} {}",
            currency.code()
        ));
    }
    Ok(LineItem {
        product_id: line.product_id.clone(),
        name: name.to_string(),
        quantity: line.quantity as u32,
        price,
        discount: Money::zero(currency),
        tax_lines: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_input() -> CheckoutInput {
        let s = |v: &str| Some(v.to_string());
        CheckoutInput {
            cart_id: s("abc123"),
            user_id: s("user789"),
            payment_method: s("credit_card"),
            shipping_address: Some(AddressInput {
                name: s("Jane Doe"),
                address: s("123 Main St"),
                city: s("New York"),
                state: s("NY"),
                zip: s("10001"),
                country: s("US"),
            }),
            contact: None,
        }
    }

    fn cart(lines: &[(&str, i64, &str)]) -> Cart {
        Cart {
            cart_id: "abc123".into(),
            user_id: "user789".into(),
            currency: "USD".into(),
            items: lines
                .iter()
                .map(|(id, q, p)| CartLine {
                    product_id: id.to_string(),
                    name: format!("Product {id}"),
                    quantity: *q,
                    price: p.to_string(),
                    currency: None,
                    tax_lines: vec![],
                })
                .collect(),
            charges: CartCharges::default(),
        }
    }

    #[test]
    fn the_seed_request_is_valid() {
        let checkout = seed_input().validate().unwrap();
        assert_eq!(checkout.payment_method, PaymentMethod::CreditCard);
        assert_eq!(checkout.shipping_address.country, "US");
    }

    #[test]
    fn every_bad_field_is_reported_by_its_path() {
        let mut input = seed_input();
        input.cart_id = None;
        input.payment_method = Some("cash".into());
        let address = input.shipping_address.as_mut().unwrap();
        address.country = Some("USA".into());
        address.name = Some(" ".into());
        address.zip = Some("1".repeat(21));
        let errors = input.validate().unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "cart_id",
                "payment_method",
                "shipping_address.name",
                "shipping_address.zip",
                "shipping_address.country"
            ]
        );
    }

    #[test]
    fn totals_come_from_cart_prices_exactly() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let checkout = seed_input().validate().unwrap();
        let order = checkout
            .place(
                &cart(&[("p001", 3, "0.10"), ("p002", 1, "64.99")]),
                "user789",
                "user789",
                now,
            )
            .unwrap();
        assert_eq!(order.total.to_decimal_string(), "65.29");
        assert_eq!(order.status, OrderStatus::Pending);
        assert_eq!(order.version, 1);
        assert_eq!(order.history.len(), 1);
    }

    #[test]
    fn carts_that_cannot_become_orders() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let place = |c: &Cart, who: &str| seed_input().validate().unwrap().place(c, who, who, now);
        assert!(matches!(
            place(&cart(&[]), "user789"),
            Err(CartProblem::Empty(_))
        ));
        assert!(matches!(
            place(&cart(&[("p", 1, "1.00")]), "mallory"),
            Err(CartProblem::NotYours(_))
        ));
        assert!(matches!(
            place(&cart(&[("p", 0, "1.00")]), "user789"),
            Err(CartProblem::BadLine { line: 0, .. })
        ));
        assert!(matches!(
            place(&cart(&[("p", 1, "1.001")]), "user789"),
            Err(CartProblem::BadLine { .. })
        ));
        let mut odd = cart(&[("p", 1, "1.00")]);
        odd.currency = "XXX".into();
        assert!(matches!(
            place(&odd, "user789"),
            Err(CartProblem::UnknownCurrency(_))
        ));
    }

    #[test]
    fn hostile_cart_lines_are_refused() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let place = |c: &Cart| {
            seed_input()
                .validate()
                .unwrap()
                .place(c, "user789", "user789", now)
        };
        let refused = |c: &Cart| match place(c) {
            Err(CartProblem::BadLine { line, message }) => (line, message),
            other => panic!("{other:?}"),
        };
        let named = |name: &str| {
            let mut c = cart(&[("p1", 1, "1.00")]);
            c.items[0].name = name.into();
            c
        };
        for name in [
            "Cable\n<script>",
            "Cable\u{0}",
            "\u{1b}[31mred",
            "evil\u{202e}txt.exe",
            "zero\u{200b}width",
        ] {
            let (line, message) = refused(&named(name));
            assert_eq!(line, 0);
            assert!(
                message.contains("control characters"),
                "{name:?}: {message}"
            );
        }
        assert!(refused(&named(&"n".repeat(201))).1.contains("200"));
        assert!(refused(&named("   ")).1.contains("name"));
        // Surrounding blanks are not part of the name.
        assert_eq!(place(&named("  Cable ")).unwrap().items[0].name, "Cable");
        assert_eq!(place(&named(&"é".repeat(200))).unwrap().items.len(), 1);

        assert!(
            refused(&cart(&[("p1", 10_001, "1.00")]))
                .1
                .contains("quantity")
        );
        assert!(refused(&cart(&[("p1", -1, "1.00")])).1.contains("quantity"));
        assert!(refused(&cart(&[("p1", 1, "-1.00")])).1.contains("negative"));
        assert!(
            refused(&cart(&[("p1", 1, "1000000.01")]))
                .1
                .contains("at most")
        );
        assert!(place(&cart(&[("p1", 1, "1000000.00")])).is_ok());
        assert!(
            refused(&cart(&[("a b", 1, "1.00")]))
                .1
                .contains("product_id")
        );

        let split = [
            ("p1", 6_000, "1.00"),
            ("p2", 1, "2.00"),
            ("p1", 4_001, "1.00"),
        ];
        let (line, message) = refused(&cart(&split));
        assert_eq!(line, 2);
        assert!(message.contains("across lines"), "{message}");
        // Split lines within the bound stay as the cart has them.
        let order = place(&cart(&[("p1", 6_000, "1.00"), ("p1", 4_000, "1.00")])).unwrap();
        assert_eq!(order.items.len(), 2);

        let mut euros = cart(&[("p1", 1, "1.00"), ("p2", 1, "1.00")]);
        euros.items[1].currency = Some("EUR".into());
        let (line, message) = refused(&euros);
        assert_eq!(line, 1);
        assert!(message.contains("EUR"), "{message}");
        euros.items[1].currency = Some("USD".into());
        assert!(place(&euros).is_ok());

        // The dearest cart there can be still totals below 2^53 minor units.
        let dearest: Vec<_> = (0..MAX_LINES).map(|i| format!("p{i}")).collect();
        let lines: Vec<_> = dearest
            .iter()
            .map(|id| (id.as_str(), MAX_QUANTITY, "1000000.00"))
            .collect();
        let order = place(&cart(&lines)).unwrap();
        assert!(order.total.minor() < 1 << 53);
    }

    #[test]
    fn a_cart_id_may_not_walk_the_cart_api_path() {
        for id in [".", ".."] {
            let mut input = seed_input();
            input.cart_id = Some(id.into());
            let errors = input.validate().unwrap_err();
            assert_eq!(errors.0[0].field, "cart_id", "{id}");
        }
        let mut input = seed_input();
        input.cart_id = Some("...".into());
        assert!(input.validate().is_ok());
    }
}
