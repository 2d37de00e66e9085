//! `GET /api/orders/{order_id}/credit-notes`: the order's credit notes, and
//! `GET /api/orders/{order_id}/credit-notes/{number}`: one of them as JSON or, asked
//! with `Accept: application/pdf`, as a PDF.

use std::sync::Arc;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use super::invoices::{PartyView, TaxSummaryView, wants_pdf};
use super::problem::ApiError;
use super::{caller, json_response, request};
use crate::auth::Authenticator;
use crate::domain::Money;
use crate::domain::billing::TaxLine;
use crate::domain::billing::credit_note::CreditNote;
use crate::domain::invoice::{Buyer, Seller};
use crate::domain::time::timestamp;
use crate::events::view::{Amount, TaxLineView, tax_lines};
use crate::services::credit_notes::CreditNoteService;

pub struct CreditNoteApi {
    pub auth: Arc<Authenticator>,
    pub credit_notes: CreditNoteService,
}

impl CreditNoteApi {
    pub async fn list_credit_notes(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let notes = self
            .credit_notes
            .list(&caller, &request::path_parameter(request, "order_id"))
            .await?;
        let body = CreditNoteList {
            credit_notes: notes.iter().map(CreditNoteView::from).collect(),
        };
        Ok(json_response(StatusCode::OK, &body))
    }

    pub async fn get_credit_note(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let note = self
            .credit_notes
            .get(
                &caller,
                &request::path_parameter(request, "order_id"),
                &request::path_parameter(request, "number"),
            )
            .await?;
        if !wants_pdf(request::header(request, "accept")) {
            return Ok(json_response(StatusCode::OK, &CreditNoteView::from(&note)));
        }
        let mut response = Response::new(Body::Binary(self.credit_notes.pdf(&note)));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pdf"),
        );
        if let Ok(disposition) =
            HeaderValue::from_str(&format!("inline; filename=\"{}.pdf\"", note.number))
        {
            headers.insert(header::CONTENT_DISPOSITION, disposition);
        }
        Ok(response)
    }
}

#[derive(Serialize)]
struct CreditNoteList {
    credit_notes: Vec<CreditNoteView>,
}

#[derive(Serialize)]
pub(super) struct CreditNoteView {
    number: String,
    /// The invoice it corrects.
    invoice_number: String,
    order_id: String,
    /// The refund it documents (the payment provider's id).
    refund_id: String,
    issued_at: String,
    issue_date: String,
    currency: &'static str,
    seller: PartyView,
    buyer: PartyView,
    /// The lines the refund gave something back of.
    lines: Vec<LineView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipping: Option<ShippingView>,
    tax_summary: Vec<TaxSummaryView>,
    net_total: Amount,
    tax_total: Amount,
    /// The amount refunded.
    total: Amount,
}

#[derive(Serialize)]
struct LineView {
    product_id: String,
    description: String,
    #[serde(flatten)]
    amounts: Amounts,
}

#[derive(Serialize)]
struct ShippingView {
    description: String,
    #[serde(flatten)]
    amounts: Amounts,
}

#[derive(Serialize)]
struct Amounts {
    net: Amount,
    tax_lines: Vec<TaxLineView>,
    tax: Amount,
    total: Amount,
}

impl Amounts {
    fn of(net: Money, taxes: &[TaxLine], tax: Money, total: Money) -> Amounts {
        Amounts {
            net: net.into(),
            tax_lines: tax_lines(taxes),
            tax: tax.into(),
            total: total.into(),
        }
    }
}

fn seller_view(seller: &Seller) -> PartyView {
    PartyView {
        name: seller.name.clone(),
        address: seller.address.clone(),
        tax_id: seller.tax_id.clone(),
        email: seller.email.clone(),
    }
}

fn buyer_view(buyer: &Buyer) -> PartyView {
    PartyView {
        name: buyer.name.clone(),
        address: buyer.address.clone(),
        tax_id: None,
        email: buyer.email.clone(),
    }
}

impl From<&CreditNote> for CreditNoteView {
    fn from(note: &CreditNote) -> Self {
        let d = &note.draft;
        CreditNoteView {
            number: note.number.to_string(),
            invoice_number: d.invoice_number.to_string(),
            order_id: d.order_id.to_string(),
            refund_id: d.refund_id.clone(),
            issued_at: timestamp(d.issued_at),
            issue_date: d.issued_at.date().to_string(),
            currency: d.total.currency().code(),
            seller: seller_view(&d.seller),
            buyer: buyer_view(&d.buyer),
            lines: d
                .lines
                .iter()
                .map(|l| LineView {
                    product_id: l.product_id.clone(),
                    description: l.description.clone(),
                    amounts: Amounts::of(l.net, &l.tax_lines, l.tax, l.total),
                })
                .collect(),
            shipping: d.shipping.as_ref().map(|s| ShippingView {
                description: s.description.clone(),
                amounts: Amounts::of(s.net, &s.tax_lines, s.tax, s.total),
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
            net_total: d.net_total.into(),
            tax_total: d.tax_total.into(),
            total: d.total.into(),
        }
    }
}
