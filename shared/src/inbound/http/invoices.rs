//! `GET /api/orders/{order_id}/invoice`: the order's invoice as JSON or, asked with
//! `Accept: application/pdf`, as a PDF.

use std::sync::Arc;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use super::problem::ApiError;
use super::{caller, json_response, request};
use crate::auth::Authenticator;
use crate::domain::invoice::Invoice;
use crate::domain::time::timestamp;
use crate::events::view::{Amount, TaxLineView, tax_lines};
use crate::services::invoices::InvoiceService;

pub struct InvoiceApi {
    pub auth: Arc<Authenticator>,
    pub invoices: InvoiceService,
}

impl InvoiceApi {
    pub async fn get_invoice(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let invoice = self
            .invoices
            .get(&caller, &request::path_parameter(request, "order_id"))
            .await?;
        if !wants_pdf(request::header(request, "accept")) {
            return Ok(json_response(StatusCode::OK, &InvoiceView::from(&invoice)));
        }
        let mut response = Response::new(Body::Binary(self.invoices.pdf(&invoice)));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pdf"),
        );
        if let Ok(disposition) =
            HeaderValue::from_str(&format!("inline; filename=\"{}.pdf\"", invoice.number))
        {
            headers.insert(header::CONTENT_DISPOSITION, disposition);
        }
        Ok(response)
    }
}

/// A PDF when the caller ranks `application/pdf` above `application/json` (or names
/// only the PDF); JSON otherwise, including for `*/*` and no `Accept` at all.
pub fn wants_pdf(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let quality = |wanted: &str| -> f32 {
        accept
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';');
                let media = parts.next()?.trim();
                if !media.eq_ignore_ascii_case(wanted) {
                    return None;
                }
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some(q)
            })
            .fold(0.0, f32::max)
    };
    let pdf = quality("application/pdf");
    pdf > 0.0 && pdf > quality("application/json")
}

#[derive(Serialize)]
pub(super) struct InvoiceView {
    invoice_number: String,
    order_id: String,
    issued_at: String,
    /// The day of `issued_at` (UTC) and the day of supply, as the document prints them.
    issue_date: String,
    supply_date: String,
    currency: &'static str,
    seller: PartyView,
    buyer: PartyView,
    lines: Vec<LineView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipping: Option<ShippingView>,
    tax_summary: Vec<TaxSummaryView>,
    taxes_included: bool,
    subtotal: Amount,
    discount_total: Amount,
    shipping_total: Amount,
    tax_total: Amount,
    total: Amount,
    payment_method: String,
    payment_reference: Option<String>,
}

#[derive(Serialize)]
pub(super) struct PartyView {
    pub(super) name: String,
    pub(super) address: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tax_id: Option<String>,
    pub(super) email: Option<String>,
}

#[derive(Serialize)]
struct LineView {
    product_id: String,
    description: String,
    quantity: u32,
    unit_price: Amount,
    amount: Amount,
    discount: Amount,
    net: Amount,
    tax_lines: Vec<TaxLineView>,
    tax: Amount,
}

#[derive(Serialize)]
struct ShippingView {
    description: String,
    amount: Amount,
    net: Amount,
    tax_lines: Vec<TaxLineView>,
    tax: Amount,
}

#[derive(Serialize)]
pub(super) struct TaxSummaryView {
    pub(super) name: String,
    pub(super) rate: String,
    pub(super) net: Amount,
    pub(super) tax: Amount,
}

impl From<&Invoice> for InvoiceView {
    fn from(invoice: &Invoice) -> Self {
        let d = &invoice.draft;
        InvoiceView {
            invoice_number: invoice.number.to_string(),
            order_id: d.order_id.to_string(),
            issued_at: timestamp(d.issued_at),
            issue_date: d.issued_at.date().to_string(),
            supply_date: d.supply_date.to_string(),
            currency: d.total.currency().code(),
            seller: PartyView {
                name: d.seller.name.clone(),
                address: d.seller.address.clone(),
                tax_id: d.seller.tax_id.clone(),
                email: d.seller.email.clone(),
            },
            buyer: PartyView {
                name: d.buyer.name.clone(),
                address: d.buyer.address.clone(),
                tax_id: None,
                email: d.buyer.email.clone(),
            },
            lines: d
                .lines
                .iter()
                .map(|l| LineView {
                    product_id: l.product_id.clone(),
                    description: l.description.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price.into(),
                    amount: l.amount.into(),
                    discount: l.discount.into(),
                    net: l.net.into(),
                    tax_lines: tax_lines(&l.tax_lines),
                    tax: l.tax.into(),
                })
                .collect(),
            shipping: d.shipping.as_ref().map(|s| ShippingView {
                description: s.description.clone(),
                amount: s.amount.into(),
                net: s.net.into(),
                tax_lines: tax_lines(&s.tax_lines),
                tax: s.tax.into(),
            }),
            tax_summary: d
                .tax_summary
                .iter()
                .map(|t| TaxSummaryView {
                    name: t.name.clone(),
                    rate: t.rate.to_string(),
                    net: t.net.into(),
                    tax: t.tax.into(),
                })
                .collect(),
            taxes_included: d.taxes_included,
            subtotal: d.subtotal.into(),
            discount_total: d.discount_total.into(),
            shipping_total: d.shipping_total.into(),
            tax_total: d.tax_total.into(),
            total: d.total.into(),
            payment_method: d.payment_method.clone(),
            payment_reference: d.payment_reference.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wants_pdf;

    #[test]
    fn a_pdf_only_when_ranked_above_json() {
        for (accept, pdf) in [
            (None, false),
            (Some("*/*"), false),
            (Some("application/json"), false),
            (Some("application/pdf"), true),
            (Some("application/pdf, */*"), true),
            (Some("Application/PDF"), true),
            (Some("application/json, application/pdf"), false),
            (Some("application/json;q=0.5, application/pdf"), true),
            (Some("application/pdf;q=0"), false),
        ] {
            assert_eq!(wants_pdf(accept), pdf, "{accept:?}");
        }
    }
}
