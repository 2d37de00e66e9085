//! The webhook subscription endpoints, for admins: create (the only answer that
//! holds the secret), list, read, delete, and the delivery log.

use std::sync::Arc;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::problem::ApiError;
use super::request::{self, Fields, RequestError};
use super::{caller, json_response};
use crate::auth::Authenticator;
use crate::domain::FieldErrors;
use crate::domain::time::timestamp;
use crate::domain::webhook::{Attempt, Subscription, TargetPolicy};
use crate::services::webhooks::{NewSubscription, SubscriptionInput, WebhookService};

/// The webhook subscription endpoints.
pub struct WebhookApi {
    pub auth: Arc<Authenticator>,
    pub webhooks: WebhookService,
}

impl WebhookApi {
    pub async fn create_webhook(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let webhooks = &self.webhooks;
        // A customer learns nothing about the body's rules.
        webhooks.authorize(&caller)?;
        let body = request::json_object(request, true)?.unwrap_or_default();
        let new = subscription_request(&body, webhooks.policy())?;
        let created = webhooks.create(&caller, new).await?;
        let mut response = json_response(
            StatusCode::CREATED,
            &SubscriptionView::with_secret(&created),
        );
        let headers = response.headers_mut();
        if let Ok(location) = HeaderValue::from_str(&format!("/api/webhooks/{}", created.id)) {
            headers.insert(header::LOCATION, location);
        }
        // The secret is in this body: no cache may keep it.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }

    pub async fn list_webhooks(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let webhooks = &self.webhooks;
        webhooks.authorize(&caller)?;
        no_query(request)?;
        let list = webhooks.list(&caller).await?;
        let views: Vec<_> = list.iter().map(SubscriptionView::from).collect();
        Ok(json_response(StatusCode::OK, &json!({ "webhooks": views })))
    }

    pub async fn get_webhook(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let id = request::path_parameter(request, "webhook_id");
        let subscription = self.webhooks.get(&caller, &id).await?;
        Ok(json_response(
            StatusCode::OK,
            &SubscriptionView::from(&subscription),
        ))
    }

    pub async fn delete_webhook(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let id = request::path_parameter(request, "webhook_id");
        self.webhooks.delete(&caller, &id).await?;
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok(response)
    }

    pub async fn list_webhook_deliveries(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let webhooks = &self.webhooks;
        webhooks.authorize(&caller)?;
        let (limit, cursor) = page_request(request)?;
        let id = request::path_parameter(request, "webhook_id");
        let list = webhooks
            .attempts(&caller, &id, limit, cursor.as_deref())
            .await?;
        let deliveries: Vec<_> = list.page.attempts.iter().map(DeliveryView::from).collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "webhook_id": id,
                "deliveries": deliveries,
                "next_cursor": list.next_cursor,
            }),
        ))
    }
}

/// The create body: shape errors (unknown members, wrong JSON types) and the
/// subscription's own checks, reported together, one entry per field.
fn subscription_request(
    body: &Map<String, Value>,
    policy: TargetPolicy,
) -> Result<NewSubscription, RequestError> {
    let mut errors = FieldErrors::default();
    let fields = Fields::new(body, "", &["url", "events", "description"]);
    fields.unknown(&mut errors);
    let events = match body.get("events") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Value::String(event) => Some(event.clone()),
                    _ => {
                        errors.add(format!("events[{i}]"), "must be a string");
                        None
                    }
                })
                .collect(),
        ),
        Some(_) => {
            errors.add("events", "must be an array of event types");
            None
        }
    };
    let input = SubscriptionInput {
        url: fields.string(&mut errors, "url"),
        events,
        description: fields.string(&mut errors, "description"),
    };
    request::with_checks(errors, input.validate(policy))
}

fn no_query(request: &Request) -> Result<(), RequestError> {
    let mut errors = FieldErrors::default();
    for (name, _) in request.query_string_parameters().iter() {
        errors.add(name, "is not a known query parameter");
    }
    errors.into_result(()).map_err(RequestError::Invalid)
}

/// `?limit=1..100&cursor=…` of the delivery log.
fn page_request(request: &Request) -> Result<(usize, Option<String>), RequestError> {
    let params = request.query_string_parameters();
    let mut errors = FieldErrors::default();
    for (name, _) in params.iter() {
        if !["limit", "cursor"].contains(&name) {
            errors.add(name, "is not a known query parameter");
        }
    }
    let limit = request::limit(&mut errors, params.first("limit"));
    // An empty `cursor=` is no cursor: the first page.
    let cursor = params
        .first("cursor")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    errors
        .into_result((limit, cursor))
        .map_err(RequestError::Invalid)
}

/// A subscription as the API shows it; the secret only in the answer to its creation.
#[derive(Serialize)]
struct SubscriptionView<'a> {
    id: &'a str,
    url: &'a str,
    events: &'a [String],
    description: Option<&'a str>,
    enabled: bool,
    created_at: String,
    disabled_at: Option<String>,
    disabled_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl<'a> From<&'a Subscription> for SubscriptionView<'a> {
    fn from(s: &'a Subscription) -> Self {
        SubscriptionView {
            id: s.id.as_str(),
            url: &s.url,
            events: &s.events,
            description: s.description.as_deref(),
            enabled: s.enabled,
            created_at: timestamp(s.created_at),
            disabled_at: s.disabled_at.map(timestamp),
            disabled_reason: s.disabled_reason.as_deref(),
            secret: None,
        }
    }
}

impl<'a> SubscriptionView<'a> {
    fn with_secret(s: &'a Subscription) -> Self {
        SubscriptionView {
            secret: s.secret.as_ref().map(|secret| secret.reveal()),
            ..SubscriptionView::from(s)
        }
    }
}

/// One recorded attempt.
#[derive(Serialize)]
struct DeliveryView<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    attempt: u32,
    at: String,
    duration_ms: u64,
    outcome: &'static str,
    status_code: Option<u16>,
    error: Option<&'a str>,
}

impl<'a> From<&'a Attempt> for DeliveryView<'a> {
    fn from(a: &'a Attempt) -> Self {
        DeliveryView {
            event_id: &a.event_id,
            event_type: &a.event_type,
            attempt: a.attempt,
            at: timestamp(a.at),
            duration_ms: a.duration_ms,
            outcome: a.outcome.as_str(),
            status_code: a.status_code,
            error: a.error.as_deref(),
        }
    }
}
