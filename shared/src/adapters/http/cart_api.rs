//! `CartSource` over the Shopping Cart API: `GET {CART_API_URL}/api/carts/{cart_id}`.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::body::{BodyError, read_limited};
use crate::domain::billing::{CartCharges, CartDiscount, CartShipping, CartTaxLine};
use crate::domain::{Cart, CartLine};
use crate::ports::{CartSource, CartSourceError};

/// The largest cart read: 100 lines of long names are well under 64 KiB.
pub const MAX_CART_BYTES: usize = 256 * 1024;

pub struct CartApi {
    http: reqwest::Client,
    base: Url,
}

impl CartApi {
    pub fn new(base_url: &str) -> Result<Self, String> {
        let base = Url::parse(base_url).map_err(|e| format!("CART_API_URL: {e}"))?;
        if base.cannot_be_a_base() {
            return Err("CART_API_URL must be an http(s) URL".into());
        }
        let http = super::tls::http_client_builder()
            // A redirect could lead anywhere, https to http included; the cart service
            // answers from where it was asked.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(CartApi { http, base })
    }

    /// The cart's URL; `None` for an id that cannot name one cart. Pushing a segment
    /// percent-encodes `/`, `?`, `#` and `%`, but `.` and `..` would still walk the
    /// path (`/api/carts/..` is `/api/carts`).
    fn url(&self, cart_id: &str) -> Option<Url> {
        if cart_id.is_empty() || crate::domain::checkout::is_dot_segment(cart_id) {
            return None;
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .extend(["api", "carts", cart_id]);
        Some(url)
    }
}

/// The cart as the Shopping Cart API sends it. Prices are kept as the JSON text
/// they arrived as (`10.00`), never passed through a float.
#[derive(Deserialize)]
struct CartBody {
    cart_id: String,
    user_id: String,
    currency: String,
    #[serde(default)]
    items: Vec<CartLineBody>,
    #[serde(default)]
    taxes_included: bool,
    #[serde(default)]
    shipping: Option<ShippingBody>,
    #[serde(default)]
    discounts: Vec<DiscountBody>,
}

/// Amounts and rates stay the JSON text they arrived as, like prices.
#[derive(Deserialize)]
struct TaxLineBody {
    name: String,
    rate: Box<RawValue>,
    amount: Box<RawValue>,
}

#[derive(Deserialize)]
struct ShippingBody {
    method: String,
    name: String,
    amount: Box<RawValue>,
    #[serde(default)]
    tax_lines: Vec<TaxLineBody>,
}

#[derive(Deserialize)]
struct DiscountBody {
    code: String,
    amount: Box<RawValue>,
}

fn taxes(lines: Vec<TaxLineBody>) -> Result<Vec<CartTaxLine>, CartSourceError> {
    lines
        .into_iter()
        .map(|t| {
            Ok(CartTaxLine {
                name: t.name,
                rate: price_text(&t.rate)?,
                amount: price_text(&t.amount)?,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct CartLineBody {
    product_id: String,
    name: String,
    quantity: i64,
    price: Box<RawValue>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    tax_lines: Vec<TaxLineBody>,
}

#[async_trait]
impl CartSource for CartApi {
    async fn cart(&self, cart_id: &str) -> Result<Option<Cart>, CartSourceError> {
        let unavailable = |e: reqwest::Error| CartSourceError::Unavailable(e.to_string());
        let Some(url) = self.url(cart_id) else {
            return Ok(None);
        };
        let response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(unavailable)?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            s if super::retry_later(s) => {
                return Err(CartSourceError::Unavailable(format!(
                    "cart API answered {s}"
                )));
            }
            s => return Err(CartSourceError::Malformed(format!("cart API answered {s}"))),
        }
        let bytes = read_limited(response, MAX_CART_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { .. } => CartSourceError::Malformed(e.to_string()),
                BodyError::Read(why) => CartSourceError::Unavailable(why),
            })?;
        let body: CartBody = serde_json::from_slice(&bytes)
            .map_err(|e| CartSourceError::Malformed(e.to_string()))?;
        if body.cart_id != cart_id {
            return Err(CartSourceError::Malformed(format!(
                "asked for cart {cart_id}, the cart API answered with cart {}",
                body.cart_id
            )));
        }
        let items = body
            .items
            .into_iter()
            .map(|line| {
                Ok(CartLine {
                    product_id: line.product_id,
                    name: line.name,
                    quantity: line.quantity,
                    price: price_text(&line.price)?,
                    currency: line.currency,
                    tax_lines: taxes(line.tax_lines)?,
                })
            })
            .collect::<Result<_, CartSourceError>>()?;
        let shipping = body
            .shipping
            .map(|s| {
                Ok::<_, CartSourceError>(CartShipping {
                    method: s.method,
                    name: s.name,
                    amount: price_text(&s.amount)?,
                    tax_lines: taxes(s.tax_lines)?,
                })
            })
            .transpose()?;
        let discounts = body
            .discounts
            .into_iter()
            .map(|d| {
                Ok(CartDiscount {
                    code: d.code,
                    amount: price_text(&d.amount)?,
                })
            })
            .collect::<Result<_, CartSourceError>>()?;
        Ok(Some(Cart {
            cart_id: body.cart_id,
            user_id: body.user_id,
            currency: body.currency,
            items,
            charges: CartCharges {
                taxes_included: body.taxes_included,
                shipping,
                discounts,
            },
        }))
    }
}

/// `10.00` or `"10.00"` → `10.00`.
fn price_text(raw: &RawValue) -> Result<String, CartSourceError> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).map_err(|e| CartSourceError::Malformed(e.to_string()))
    } else {
        Ok(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cart_id_names_one_segment_under_api_carts() {
        let api = CartApi::new("http://carts.example/base/").unwrap();
        let url = |id: &str| api.url(id).map(|u| u.to_string());
        assert_eq!(
            url("c-1").as_deref(),
            Some("http://carts.example/base/api/carts/c-1")
        );
        assert_eq!(
            url("a/../b?x#y").as_deref(),
            Some("http://carts.example/base/api/carts/a%2F..%2Fb%3Fx%23y")
        );
        assert_eq!(
            url("%2e%2e").as_deref(),
            Some("http://carts.example/base/api/carts/%252e%252e")
        );
        assert_eq!(url(".."), None);
        assert_eq!(url("."), None);
        assert_eq!(url(""), None);
    }

    /// A loopback server that answers every connection with `answer` (a whole HTTP/1.1
    /// response); answers its base URL.
    async fn serve(answer: String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        url
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    const CART: &str = r#"{"cart_id":"c1","user_id":"ann","currency":"USD","items":[{"product_id":"p1","name":"Cable","quantity":1,"price":"1.00"}]}"#;

    #[tokio::test]
    async fn the_priced_checkout_is_read_as_sent() {
        let priced = r#"{"cart_id": "c1", "user_id": "u1", "currency": "EUR", "taxes_included": false,
            "items": [{"product_id": "p001", "name": "USB Cable", "quantity": 2, "price": "10.00",
                       "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "3.04"}]}],
            "shipping": {"method": "dhl_paket", "name": "DHL Paket", "amount": 4.90,
                         "tax_lines": [{"name": "VAT", "rate": 0.19, "amount": "0.93"}]},
            "discounts": [{"code": "WELCOME10", "amount": "4.00"}]}"#;
        let api = CartApi::new(&serve(ok(priced)).await).unwrap();
        let cart = api.cart("c1").await.unwrap().unwrap();
        assert_eq!(cart.items[0].tax_lines[0].rate, "0.19");
        let shipping = cart.charges.shipping.unwrap();
        // A JSON number keeps its digits: never a float on the way.
        assert_eq!(shipping.amount, "4.90");
        assert_eq!(shipping.tax_lines[0].rate, "0.19");
        assert_eq!(cart.charges.discounts[0].amount, "4.00");
        assert!(!cart.charges.taxes_included);
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let elsewhere = serve(ok(CART)).await;
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nlocation: {elsewhere}/api/carts/c1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let api = CartApi::new(&serve(redirect).await).unwrap();
        assert!(
            CartApi::new(&elsewhere)
                .unwrap()
                .cart("c1")
                .await
                .unwrap()
                .is_some()
        );

        let answer = api.cart("c1").await;

        assert!(
            matches!(&answer, Err(CartSourceError::Malformed(why)) if why.contains("302")),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn a_cart_larger_than_the_bound_is_refused_unread() {
        let name = "x".repeat(MAX_CART_BYTES);
        let huge = CART.replace("Cable", &name);
        let api = CartApi::new(&serve(ok(&huge)).await).unwrap();
        let answer = api.cart("c1").await;
        assert!(
            matches!(&answer, Err(CartSourceError::Malformed(why)) if why.contains("larger than")),
            "{answer:?}"
        );
        // Without a Content-Length, the chunks read are the bound.
        let unannounced = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{huge}"
        );
        let api = CartApi::new(&serve(unannounced).await).unwrap();
        let answer = api.cart("c1").await;
        assert!(
            matches!(&answer, Err(CartSourceError::Malformed(why)) if why.contains("larger than")),
            "{answer:?}"
        );
    }
}
