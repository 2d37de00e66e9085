//! A customer's data: `POST`/`GET /api/customers/{user_id}/erasure` (admins) and
//! `GET /api/customers/{user_id}/export` (the customer or an admin).

use std::sync::Arc;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::Value;

use super::credit_notes::CreditNoteView;
use super::invoices::InvoiceView;
use super::problem::ApiError;
use super::request::{self, Fields, RequestError};
use super::{caller, json_response};
use crate::auth::Authenticator;
use crate::domain::FieldErrors;
use crate::domain::privacy::ErasureJob;
use crate::domain::time::timestamp;
use crate::events::view::{self, HistoryView, OrderView, Reader, ShipmentView};
use crate::ports::MessageRecord;
use crate::services::privacy::PrivacyService;

pub struct PrivacyApi {
    pub auth: Arc<Authenticator>,
    pub privacy: PrivacyService,
}

impl PrivacyApi {
    /// `POST /api/customers/{user_id}/erasure`, body `{"force": bool}` or none: 202
    /// with the job (a new one, or the one running).
    pub async fn request_erasure(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let user_id = request::path_parameter(request, "user_id");
        let force = force(request)?;
        let requested = self
            .privacy
            .request_erasure(&caller, &user_id, force)
            .await?;
        let mut response = json_response(StatusCode::ACCEPTED, &JobView::from(&requested.job));
        if let Ok(location) = HeaderValue::from_str(&erasure_path(&user_id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    /// `GET /api/customers/{user_id}/erasure`: the latest job's progress.
    pub async fn get_erasure(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        no_query(request, &[])?;
        let user_id = request::path_parameter(request, "user_id");
        let job = self.privacy.erasure(&caller, &user_id).await?;
        Ok(json_response(StatusCode::OK, &JobView::from(&job)))
    }

    /// `GET /api/customers/{user_id}/export?limit=&cursor=`: one page of the
    /// customer's data, with a `next` link while there is more.
    pub async fn export(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        no_query(request, &["limit", "cursor"])?;
        let params = request.query_string_parameters();
        let mut errors = FieldErrors::default();
        let limit = request::limit(&mut errors, params.first("limit"));
        errors.into_result(()).map_err(RequestError::Invalid)?;
        let user_id = request::path_parameter(request, "user_id");
        let page = self
            .privacy
            .export(&caller, &user_id, limit, params.first("cursor"))
            .await?;
        let reader = if caller.admin {
            Reader::Staff
        } else {
            Reader::Customer
        };
        let next = page.next_cursor.as_ref().map(|cursor| {
            format!(
                "/api/customers/{}/export?limit={limit}&cursor={cursor}",
                encode(&user_id)
            )
        });
        let document = ExportView {
            user_id: &user_id,
            generated_at: timestamp(time::OffsetDateTime::now_utc()),
            orders: page
                .orders
                .iter()
                .map(|order| ExportedOrder {
                    order: OrderView::for_reader(order, &caller),
                    parcels: order
                        .shipments
                        .iter()
                        .map(|s| ShipmentView::of(order, s))
                        .collect(),
                    history: view::history(order, reader),
                })
                .collect(),
            invoices: page.invoices.iter().map(InvoiceView::from).collect(),
            credit_notes: page.credit_notes.iter().map(CreditNoteView::from).collect(),
            messages: page.messages.iter().map(MessageView::from).collect(),
            next_cursor: page.next_cursor.clone(),
            next,
        };
        let mut response = json_response(StatusCode::OK, &document);
        // Personal data: no cache on the way may keep it.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }
}

fn erasure_path(user_id: &str) -> String {
    format!("/api/customers/{}/erasure", encode(user_id))
}

/// A user id as one path segment or query value: everything but unreserved
/// characters percent-encoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The erasure request's `force` (false without a body).
fn force(request: &Request) -> Result<bool, RequestError> {
    let Some(body) = request::json_object(request, false)? else {
        return Ok(false);
    };
    let fields = Fields::new(&body, "", &["force"]);
    let mut errors = FieldErrors::default();
    fields.unknown(&mut errors);
    let force = match body.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.add("force", "must be true or false");
            false
        }
    };
    errors.into_result(()).map_err(RequestError::Invalid)?;
    Ok(force)
}

fn no_query(request: &Request, known: &[&str]) -> Result<(), RequestError> {
    let mut errors = FieldErrors::default();
    for (name, _) in request.query_string_parameters().iter() {
        if !known.contains(&name) {
            errors.add(name, "is not a known query parameter");
        }
    }
    errors.into_result(()).map_err(RequestError::Invalid)
}

/// An erasure job as the API shows it.
#[derive(Serialize)]
struct JobView {
    job_id: String,
    user_id: String,
    status: &'static str,
    force: bool,
    requested_by: String,
    requested_at: String,
    updated_at: String,
    finished_at: Option<String>,
    /// Orders erased by this job.
    orders_erased: u64,
    /// Orders left as they were: erased already, or opened after the request.
    orders_skipped: u64,
    /// Of `orders_erased`, those still open (`still_open`: a forced job).
    open_orders_erased: u64,
    pages: u64,
}

impl From<&ErasureJob> for JobView {
    fn from(job: &ErasureJob) -> Self {
        JobView {
            job_id: job.job_id.clone(),
            user_id: job.user_id.clone(),
            status: job.state.as_str(),
            force: job.force,
            requested_by: job.requested_by.clone(),
            requested_at: timestamp(job.requested_at),
            updated_at: timestamp(job.updated_at),
            finished_at: job.finished_at.map(timestamp),
            orders_erased: job.erased,
            orders_skipped: job.skipped,
            open_orders_erased: job.forced,
            pages: job.pages,
        }
    }
}

/// The export document. A struct, not `json!`, so amounts keep their digits.
#[derive(Serialize)]
struct ExportView<'a> {
    user_id: &'a str,
    generated_at: String,
    orders: Vec<ExportedOrder>,
    invoices: Vec<InvoiceView>,
    /// The refunds' credit notes of this page's orders, as
    /// `GET /api/orders/{order_id}/credit-notes` shows them.
    credit_notes: Vec<CreditNoteView>,
    messages: Vec<MessageView>,
    next_cursor: Option<String>,
    /// The next page's path and query, while there is one.
    next: Option<String>,
}

#[derive(Serialize)]
struct ExportedOrder {
    order: OrderView,
    /// Its parcels whole, as `GET …/shipments` shows them.
    parcels: Vec<ShipmentView>,
    history: Vec<HistoryView>,
}

#[derive(Serialize)]
struct MessageView {
    event_id: String,
    channel: &'static str,
    status: &'static str,
    sent_at: Option<String>,
    provider_id: Option<String>,
}

impl From<&MessageRecord> for MessageView {
    fn from(m: &MessageRecord) -> Self {
        MessageView {
            event_id: m.event_id.clone(),
            channel: m.channel.as_str(),
            status: if m.sent_at.is_some() {
                "sent"
            } else {
                "pending"
            },
            sent_at: m.sent_at.map(timestamp),
            provider_id: m.provider_id.clone(),
        }
    }
}
