//! The one place that turns configuration into running services: every function's
//! `main`, the local stack (`dev/`) and the tests build what they run here, so the
//! local stack runs exactly what Lambda runs.
//!
//! Settings are read once, into [`Settings`]. Each builder takes only what its function
//! needs and refuses a missing or invalid setting with an error that names it, so a
//! misconfigured function stops at init, before its first poll, instead of answering
//! its first caller with a 500.

mod console;
mod credit_notes;
pub use console::{COGNITO_DOMAIN, CONSOLE_CLIENT_ID, CONSOLE_URL, console_site};

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_config::SdkConfig;

use crate::adapters::dynamo::order_item::ListShards;
use crate::adapters::dynamo::{CartTable, DynamoInventory, DynamoOrderStore, DynamoWebhookStore};
use crate::adapters::dynamo::{DynamoInvoiceStore, DynamoMessageLog};
use crate::adapters::emf::{EmfMetrics, NAMESPACE as EMF_NAMESPACE};
use crate::adapters::event_bus::EventBridgeBus;
use crate::adapters::http::sendgrid::{SENDGRID_DEFAULT_URL, SendGridMailer, split_mailbox};
use crate::adapters::http::stripe::{KeylessGateway, STRIPE_DEFAULT_URL};
use crate::adapters::http::twilio::{TWILIO_DEFAULT_URL, TwilioMessenger};
use crate::adapters::http::{CartApi, HttpWebhookSender, StripeGateway};
use crate::adapters::invoice_pdf::{LAYER_FONT, PdfFont, PdfInvoices, SOURCE_FONT};
use crate::adapters::kms::SecretSeal;
use crate::adapters::ses::SesMailer;
use crate::adapters::templates::Templates;
use crate::adapters::webhook_queue::SqsRetryDelay;
use crate::auth::{AuthConfigError, AuthSettings, Authenticator};
use crate::domain::invoice::{InvoiceSeries, Seller};
use crate::domain::rate_limit::{DEFAULT_CREATE_LIMIT, RateLimit};
use crate::domain::webhook::TargetPolicy;
use crate::inbound::http::{
    Api, CheckoutApi, InvoiceApi, OrderApi, PaymentApi, ShippingApi, WebhookApi,
};
use crate::ports::{CartSource, Metrics, NoMetrics, PaymentGateway};
use crate::ports::{Mailer, TextMessenger};
use crate::services::checkout::{CheckoutPayments, CheckoutService};
use crate::services::deliveries::{DEFAULT_BATCH_DEADLINE, Deliveries};
use crate::services::fulfillment::Fulfillment;
use crate::services::invoices::InvoiceService;
use crate::services::notifications::Notifications;
use crate::services::orders::OrderService;
use crate::services::payments::{DEFAULT_PENDING_PAYMENT_TTL, PaymentService};
use crate::services::publisher::Publisher;
use crate::services::webhooks::WebhookService;

mod returns;
mod secrets;
mod shipping;
pub use secrets::{PROVIDER_KEYS, arn_setting};

mod privacy;

/// The documented local default for `CURSOR_SECRET` (local mode only).
pub const DEV_CURSOR_SECRET: &str = "orders-local-dev-cursor-secret";

/// The sender in local mode when `MAIL_FROM` is unset (`make dev` creates it as an
/// SES identity on the emulator).
pub const DEV_MAIL_FROM: &str = "Orders (local) <orders@example.com>";

/// The seller on invoices in local mode when `INVOICE_SELLER` is unset.
pub const DEV_INVOICE_SELLER: &str = r#"{"name": "Orders Demo Shop", "address": ["1 Market Street", "San Francisco, CA 94105", "US"], "tax_id": "US-DEMO-0001", "email": "billing@example.com"}"#;

/// Lambda's longest timeout (15 minutes): no batch deadline can be longer.
const MAX_BATCH_DEADLINE_SECONDS: f64 = 900.0;

/// `true` on a developer's machine (`make dev`, the tests): webhooks may target this
/// machine, and the published development secrets are accepted. Never in a deployed
/// stack.
pub const LOCAL_MODE: &str = crate::auth::ENV_LOCAL_MODE;

#[derive(thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{setting}: {why}")]
    Invalid { setting: &'static str, why: String },
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
}

/// A function's `main` returns this error, and Rust prints an error's `Debug` on the
/// way out: make that the sentence that names the setting.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The settings, read once. Empty values count as unset.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// The process environment, as Lambda (or `make dev`) sets it.
    pub fn from_env() -> Settings {
        Settings {
            values: std::env::vars().collect(),
        }
    }

    /// The same settings with `name` set to `value` (the local stack's and the tests'
    /// overrides).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Settings {
        self.values.insert(name.to_string(), value.into());
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<&str, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    pub fn local_mode(&self) -> bool {
        self.get(LOCAL_MODE)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1"))
    }
}

/// Where carts come from: `CARTS_TABLE` (a DynamoDB table of carts) or `CART_API_URL`
/// (the Shopping Cart API), exactly one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartsFrom {
    Table(String),
    Api(String),
}

impl CartsFrom {
    pub fn from_settings(settings: &Settings) -> Result<CartsFrom, ConfigError> {
        match (settings.get("CARTS_TABLE"), settings.get("CART_API_URL")) {
            (Some(_), Some(_)) => Err(ConfigError::Invalid {
                setting: "CARTS_TABLE",
                why: "set CARTS_TABLE or CART_API_URL, not both".into(),
            }),
            (Some(table), None) => Ok(CartsFrom::Table(table.to_string())),
            (None, Some(url)) => Ok(CartsFrom::Api(url.to_string())),
            (None, None) => Err(ConfigError::Missing("CARTS_TABLE or CART_API_URL")),
        }
    }
}

/// The builders. One per function kind; each reads its settings and builds its
/// adapters on one AWS SDK configuration.
pub struct Wiring {
    settings: Settings,
    sdk: SdkConfig,
    /// One DynamoDB client for every adapter of the function: clones share its
    /// connections (one TLS handshake, not one per adapter), and it is built only by
    /// the functions that use DynamoDB.
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    /// One Stripe client, shared the same way by checkout and the payment service.
    stripe: OnceLock<Arc<dyn PaymentGateway>>,
    /// The provider keys, as read at init (`wiring/secrets.rs`).
    keys: secrets::ProviderKeys,
    /// Where figures go instead of what `METRICS` says ([`Wiring::with_metrics`]).
    metrics_sink: OnceLock<Arc<dyn Metrics>>,
}

impl Wiring {
    /// From the environment, with the SDK configured as every function uses it and
    /// the provider keys read from Secrets Manager.
    pub async fn from_env() -> Wiring {
        Wiring::load(
            Settings::from_env(),
            crate::adapters::aws::sdk_config().await,
        )
        .await
    }

    /// Provider keys given by value only; [`Wiring::load`] also reads those given by ARN.
    pub fn new(settings: Settings, sdk: SdkConfig) -> Wiring {
        Wiring {
            keys: secrets::ProviderKeys::plain(&settings),
            settings,
            sdk,
            dynamodb: OnceLock::new(),
            stripe: OnceLock::new(),
            metrics_sink: OnceLock::new(),
        }
    }

    /// Every service built from here on reports its figures to `sink` (the tests'
    /// scan of what the functions emit; a Lambda function uses `METRICS`).
    pub fn with_metrics(self, sink: Arc<dyn Metrics>) -> Wiring {
        let _ = self.metrics_sink.set(sink);
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn table(&self) -> Result<&str, ConfigError> {
        self.settings.required("TABLE_NAME")
    }

    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        self.dynamodb
            .get_or_init(|| aws_sdk_dynamodb::Client::new(&self.sdk))
            .clone()
    }

    fn target_policy(&self) -> TargetPolicy {
        let policy = TargetPolicy {
            allow_private: self.settings.local_mode(),
        };
        if policy.allow_private {
            tracing::warn!("{LOCAL_MODE} is on: webhooks may target private networks");
        }
        policy
    }

    pub fn authenticator(&self) -> Result<Arc<Authenticator>, ConfigError> {
        let settings = AuthSettings::from_vars(|name| self.settings.get(name).map(String::from));
        Ok(Arc::new(Authenticator::from_settings(&settings)?))
    }

    /// `CURSOR_SECRET`, the key that signs list cursors: read from Secrets Manager by
    /// `CURSOR_SECRET_ARN` like the provider keys (`wiring/secrets.rs`; a value is
    /// refused in Lambda), at least 32 bytes outside local mode, the documented
    /// [`DEV_CURSOR_SECRET`] in local mode when unset. `None`: the function was not
    /// given one (only the functions that list are).
    fn cursor_secret(&self) -> Result<Option<Arc<str>>, ConfigError> {
        let local = self.settings.local_mode();
        match self.key_read_at_init("CURSOR_SECRET")? {
            Some(secret) => {
                if secret.len() < 32 && !local {
                    return Err(ConfigError::Invalid {
                        setting: "CURSOR_SECRET",
                        why: "must be at least 32 bytes".into(),
                    });
                }
                Ok(Some(secret))
            }
            None if local => Ok(Some(Arc::from(DEV_CURSOR_SECRET))),
            None => Ok(None),
        }
    }

    /// [`Wiring::cursor_secret`], for the functions that sign cursors.
    fn required_cursor_secret(&self) -> Result<Arc<str>, ConfigError> {
        self.cursor_secret()?
            .ok_or(ConfigError::Missing("CURSOR_SECRET_ARN"))
    }

    pub fn cart_source(&self) -> Result<Arc<dyn CartSource>, ConfigError> {
        Ok(match CartsFrom::from_settings(&self.settings)? {
            CartsFrom::Table(table) => Arc::new(CartTable::new(self.dynamodb(), table)),
            CartsFrom::Api(url) => {
                Arc::new(CartApi::new(&url).map_err(|why| ConfigError::Invalid {
                    setting: "CART_API_URL",
                    why,
                })?)
            }
        })
    }

    fn order_store(&self) -> Result<Arc<DynamoOrderStore>, ConfigError> {
        Ok(Arc::new(
            DynamoOrderStore::new(self.dynamodb(), self.table()?)
                .with_list_shards(self.list_shards()?),
        ))
    }

    /// `LIST_INDEX_SHARDS`: shards of the `by_status` and `by_created` partitions
    /// (default [`ListShards::DEFAULT`]; docs/data-design.md has the arithmetic).
    pub fn list_shards(&self) -> Result<ListShards, ConfigError> {
        let Some(text) = self.settings.get("LIST_INDEX_SHARDS") else {
            return Ok(ListShards::default());
        };
        text.parse()
            .ok()
            .and_then(ListShards::new)
            .ok_or_else(|| ConfigError::Invalid {
                setting: "LIST_INDEX_SHARDS",
                why: format!(
                    "{text:?} is not a whole number from 1 to {}",
                    ListShards::MAX
                ),
            })
    }

    /// The orders' service; it lists only when the function was given
    /// `CURSOR_SECRET` (or runs in local mode).
    pub fn order_service(&self) -> Result<OrderService, ConfigError> {
        let store = self.order_store()?;
        let service = OrderService::new(store.clone())
            .with_metrics(self.metrics()?)
            .with_shipments(store);
        Ok(match self.cursor_secret()? {
            Some(secret) => service.with_cursor_secret(secret.as_bytes()),
            None => service,
        })
    }

    /// `METRICS`: `emf` (CloudWatch Embedded Metric Format on stdout) or `off`;
    /// unset, `emf` in Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set) and `off` elsewhere
    /// (the local stack and the tests, whose output it would only clutter).
    pub fn metrics(&self) -> Result<Arc<dyn Metrics>, ConfigError> {
        if let Some(sink) = self.metrics_sink.get() {
            return Ok(Arc::clone(sink));
        }
        let in_lambda = self.settings.get("AWS_LAMBDA_FUNCTION_NAME").is_some();
        match self.settings.get("METRICS") {
            Some("emf") => Ok(Arc::new(EmfMetrics::new(EMF_NAMESPACE))),
            None if in_lambda => Ok(Arc::new(EmfMetrics::new(EMF_NAMESPACE))),
            Some("off") | None => Ok(Arc::new(NoMetrics)),
            Some(other) => Err(ConfigError::Invalid {
                setting: "METRICS",
                why: format!("{other:?} is neither emf nor off"),
            }),
        }
    }

    pub fn checkout_service(&self) -> Result<CheckoutService, ConfigError> {
        let store = self.order_store()?;
        let payments = self.payment_gateway()?.map(|gateway| CheckoutPayments {
            gateway,
            ledger: store.clone(),
        });
        Ok(CheckoutService::new(store, self.cart_source()?)
            .with_cart_deadline(crate::adapters::aws::OPERATION_TIMEOUT)
            .with_create_limit(self.create_limit()?)
            .with_metrics(self.metrics()?)
            .with_payments(payments))
    }

    /// Stripe, when `STRIPE_SECRET_KEY` (or `_ARN`) is set (at `STRIPE_API_BASE`, default
    /// [`STRIPE_DEFAULT_URL`]); `None`: payments are off and orders are confirmed by hand.
    pub fn payment_gateway(&self) -> Result<Option<Arc<dyn PaymentGateway>>, ConfigError> {
        let Some(key) = self.provider_key("STRIPE_SECRET_KEY")? else {
            return Ok(None);
        };
        let base = self
            .settings
            .get("STRIPE_API_BASE")
            .unwrap_or(STRIPE_DEFAULT_URL);
        if let Some(stripe) = self.stripe.get() {
            return Ok(Some(stripe.clone()));
        }
        let stripe = StripeGateway::new(base, key).map_err(|why| ConfigError::Invalid {
            setting: "STRIPE_API_BASE",
            why,
        })?;
        Ok(Some(self.stripe.get_or_init(|| Arc::new(stripe)).clone()))
    }

    /// Whether payments are on (`STRIPE_SECRET_KEY` or its `_ARN` set);
    /// `payment_gateway` says whether the settings are valid.
    pub fn payments_on(&self) -> bool {
        self.has_key("STRIPE_SECRET_KEY")
    }

    /// Payments, refunds and the expiry sweep: these functions exist only with
    /// payments on, so `STRIPE_SECRET_KEY` is required.
    pub fn payment_service(&self) -> Result<PaymentService, ConfigError> {
        let gateway = self
            .payment_gateway()?
            .ok_or(ConfigError::Missing("STRIPE_SECRET_KEY"))?;
        let store = self.order_store()?;
        Ok(PaymentService::new(store.clone(), store, gateway).with_metrics(self.metrics()?))
    }

    /// `POST /api/payments/stripe/webhook` and `POST /api/orders/{id}/refunds` (the
    /// local stack and the tests, which hold every key).
    pub fn payment_api(&self) -> Result<PaymentApi, ConfigError> {
        Ok(PaymentApi {
            auth: self.authenticator()?,
            payments: self.payment_service()?,
            webhook_secret: Some(self.webhook_signing_secret()?),
        })
    }

    /// `stripe-webhook`: the signing secret, and no Stripe key (it never calls Stripe).
    pub fn stripe_webhook_api(&self) -> Result<PaymentApi, ConfigError> {
        Ok(PaymentApi {
            auth: self.authenticator()?,
            payments: self.keyless_payment_service()?,
            webhook_secret: Some(self.webhook_signing_secret()?),
        })
    }

    /// `create-refund`: a Stripe key (a restricted `rk_…` one will do), and no signing
    /// secret.
    pub fn refund_api(&self) -> Result<PaymentApi, ConfigError> {
        Ok(PaymentApi {
            auth: self.authenticator()?,
            payments: self.payment_service()?,
            webhook_secret: None,
        })
    }

    /// `expire-orders`: cancels unpaid orders; `settle-payments` withdraws their intents.
    pub fn expiry_service(&self) -> Result<PaymentService, ConfigError> {
        self.keyless_payment_service()
    }

    /// The payment service of a function that never calls Stripe: the gateway refuses
    /// (see [`KeylessGateway`]) unless the function was given a key anyway.
    fn keyless_payment_service(&self) -> Result<PaymentService, ConfigError> {
        let gateway = match self.payment_gateway()? {
            Some(gateway) => gateway,
            None => Arc::new(KeylessGateway),
        };
        let store = self.order_store()?;
        Ok(PaymentService::new(store.clone(), store, gateway).with_metrics(self.metrics()?))
    }

    /// `STRIPE_WEBHOOK_SECRET` (or `_ARN`): `whsec_…`.
    fn webhook_signing_secret(&self) -> Result<String, ConfigError> {
        self.key_read_at_init("STRIPE_WEBHOOK_SECRET")?
            .map(|secret| secret.to_string())
            .ok_or(ConfigError::Missing("STRIPE_WEBHOOK_SECRET"))
    }

    /// `PENDING_PAYMENT_TTL`: how long a card order may wait for its payment before
    /// the sweep cancels it: seconds, or a number with `s`, `m`, `h` or `d` (default
    /// [`DEFAULT_PENDING_PAYMENT_TTL`], a day).
    pub fn pending_payment_ttl(&self) -> Result<Duration, ConfigError> {
        let Some(text) = self.settings.get("PENDING_PAYMENT_TTL") else {
            return Ok(DEFAULT_PENDING_PAYMENT_TTL);
        };
        let (number, unit) = match text.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
            _ => (text, 's'),
        };
        let scale = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => 0,
        };
        number
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0 && scale > 0)
            .and_then(|n| n.checked_mul(scale))
            .map(Duration::from_secs)
            .ok_or_else(|| ConfigError::Invalid {
                setting: "PENDING_PAYMENT_TTL",
                why: format!("{text:?} is not a duration such as 3600, 30m, 24h or 2d"),
            })
    }

    /// `ORDER_CREATE_LIMIT`: creates per caller, `<count>/<seconds>` (default
    /// [`DEFAULT_CREATE_LIMIT`]); `0` is no limit.
    pub fn create_limit(&self) -> Result<Option<RateLimit>, ConfigError> {
        let text = self
            .settings
            .get("ORDER_CREATE_LIMIT")
            .unwrap_or(DEFAULT_CREATE_LIMIT);
        RateLimit::parse(text).map_err(|e| ConfigError::Invalid {
            setting: "ORDER_CREATE_LIMIT",
            why: e.to_string(),
        })
    }

    pub fn webhook_service(&self) -> Result<WebhookService, ConfigError> {
        let store = self.webhook_store(false)?;
        Ok(WebhookService::new(Arc::new(store), self.target_policy()))
    }

    /// Subscriptions in `TABLE_NAME`; with `WEBHOOK_SECRETS_KEY_ID` (a KMS key ARN or
    /// alias) new secrets are sealed by that key, and opened when read by a store that
    /// signs (`opening`: the deliverer). Unset: secrets are stored as text (local runs).
    fn webhook_store(&self, opening: bool) -> Result<DynamoWebhookStore, ConfigError> {
        let store = DynamoWebhookStore::new(self.dynamodb(), self.table()?);
        let Some(key_id) = self.settings.get("WEBHOOK_SECRETS_KEY_ID") else {
            return Ok(store);
        };
        let seal = SecretSeal::new(aws_sdk_kms::Client::new(&self.sdk), key_id);
        let seal = if opening { seal.opening() } else { seal };
        Ok(store.with_seal(Arc::new(seal)))
    }

    /// `GET`/`PUT`/`DELETE` of orders, and history (and lists, when the function was
    /// given `CURSOR_SECRET`).
    pub fn order_api(&self) -> Result<OrderApi, ConfigError> {
        Ok(OrderApi {
            auth: self.authenticator()?,
            orders: self.order_service()?,
        })
    }

    /// `list-orders`: [`Wiring::order_api`], refused without a cursor secret (its
    /// pages are linked by signed cursors).
    pub fn order_list_api(&self) -> Result<OrderApi, ConfigError> {
        self.required_cursor_secret()?;
        self.order_api()
    }

    /// `POST /api/orders`.
    pub fn checkout_api(&self) -> Result<CheckoutApi, ConfigError> {
        Ok(CheckoutApi {
            auth: self.authenticator()?,
            checkout: self.checkout_service()?,
        })
    }

    /// `/api/webhooks`.
    pub fn webhook_api(&self) -> Result<WebhookApi, ConfigError> {
        Ok(WebhookApi {
            auth: self.authenticator()?,
            webhooks: self.webhook_service()?,
        })
    }

    /// Every endpoint at once: the local stack's server and the tests.
    pub fn api(&self) -> Result<Api, ConfigError> {
        let auth = self.authenticator()?;
        Ok(Api {
            orders: OrderApi {
                auth: auth.clone(),
                orders: self.order_service()?,
            },
            checkout: CheckoutApi {
                auth: auth.clone(),
                checkout: self.checkout_service()?,
            },
            webhooks: WebhookApi {
                auth: auth.clone(),
                webhooks: self.webhook_service()?,
            },
            payments: if self.payments_on() {
                Some(self.payment_api()?)
            } else {
                None
            },
            invoices: InvoiceApi {
                auth: auth.clone(),
                invoices: self.invoice_service()?,
            },
            shipments: ShippingApi {
                auth: auth.clone(),
                shipping: self.shipping_service()?,
            },
            shippo: if self.has_key("SHIPPO_API_TOKEN") {
                Some(self.shippo_webhook_api()?)
            } else {
                None
            },
            returns: self.return_api()?,
            credit_notes: self.credit_note_api()?,
            privacy: self.privacy_api_with(auth.clone())?,
            suppressions: self.suppression_api_with(auth)?,
        })
    }

    /// The stream publisher, on the bus named by `EVENT_BUS_NAME`.
    pub fn publisher(&self) -> Result<Publisher, ConfigError> {
        let bus = EventBridgeBus::from_sdk(&self.sdk, self.settings.required("EVENT_BUS_NAME")?);
        Ok(Publisher::new(Arc::new(bus)).with_metrics(self.metrics()?))
    }

    /// Fulfillment: orders and stock share `TABLE_NAME`; with `SHIPPING_LABELS=auto`
    /// it also buys each confirmed order's label (`wiring/shipping.rs`).
    pub fn fulfillment(&self) -> Result<Fulfillment, ConfigError> {
        let table = self.table()?;
        let fulfillment = Fulfillment::new(
            self.order_store()?,
            Arc::new(DynamoInventory::new(self.dynamodb(), table)),
        )
        .with_metrics(self.metrics()?);
        Ok(match self.automatic_labels()? {
            Some(shipping) => fulfillment.with_automatic_labels(shipping),
            None => fulfillment,
        })
    }

    /// The webhook deliverer: orders and subscriptions in `TABLE_NAME`, retries delayed on
    /// `WEBHOOK_QUEUE_URL` (else the queue is looked up from the message's ARN), each
    /// batch ending its sends after `WEBHOOK_BATCH_DEADLINE` seconds (default
    /// [`DEFAULT_BATCH_DEADLINE`], 20; keep it below the function's Timeout).
    pub fn deliveries(&self) -> Result<Deliveries, ConfigError> {
        let deadline = match self.settings.get("WEBHOOK_BATCH_DEADLINE") {
            None => DEFAULT_BATCH_DEADLINE,
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_BATCH_DEADLINE_SECONDS)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| ConfigError::Invalid {
                    setting: "WEBHOOK_BATCH_DEADLINE",
                    why: format!(
                        "{text:?} is not a number of seconds above 0 and at most {MAX_BATCH_DEADLINE_SECONDS}"
                    ),
                })?,
        };
        let store = self.webhook_store(true)?;
        let sender =
            HttpWebhookSender::new(self.target_policy()).map_err(|why| ConfigError::Invalid {
                setting: LOCAL_MODE,
                why,
            })?;
        let queue_url = self.settings.get("WEBHOOK_QUEUE_URL").map(str::to_string);
        let retry = SqsRetryDelay::new(aws_sdk_sqs::Client::new(&self.sdk), queue_url);
        Ok(Deliveries::new(
            self.order_store()?,
            Arc::new(store),
            Arc::new(sender),
            Arc::new(retry),
        )
        .with_deadline(deadline)
        .with_metrics(self.metrics()?))
    }

    /// `GET /api/orders/{order_id}/invoice`.
    pub fn invoice_api(&self) -> Result<InvoiceApi, ConfigError> {
        Ok(InvoiceApi {
            auth: self.authenticator()?,
            invoices: self.invoice_service()?,
        })
    }

    fn invoice_service(&self) -> Result<InvoiceService, ConfigError> {
        Ok(InvoiceService::new(
            Arc::new(DynamoInvoiceStore::new(self.dynamodb(), self.table()?)),
            Arc::new(PdfInvoices {
                font: self.pdf_font()?,
            }),
        ))
    }

    /// `PDF_FONT_PATH`: the font invoices and credit notes are set in, read here, at
    /// init, so that a function deployed without its font layer fails at once. Unset:
    /// the layer's copy in Lambda, this source tree's elsewhere.
    pub(crate) fn pdf_font(&self) -> Result<PdfFont, ConfigError> {
        let path = match self.settings.get("PDF_FONT_PATH") {
            Some(path) => path,
            None if self.settings.get("AWS_LAMBDA_FUNCTION_NAME").is_some() => LAYER_FONT,
            None => SOURCE_FONT,
        };
        PdfFont::load(std::path::Path::new(path)).map_err(|e| ConfigError::Invalid {
            setting: "PDF_FONT_PATH",
            why: e.to_string(),
        })
    }

    /// The notifications consumer: orders, invoices and message claims in
    /// `TABLE_NAME`; email by `MAIL_PROVIDER` (`ses`, the default, or `sendgrid`)
    /// from `MAIL_FROM`; SMS by Twilio when `TWILIO_ACCOUNT_SID` is set; invoices
    /// issued by `INVOICE_SELLER`.
    pub fn notifications(&self) -> Result<Notifications, ConfigError> {
        let seller = self.seller()?;
        let templates = Templates::new(seller.name.clone()).map_err(|e| ConfigError::Invalid {
            setting: "templates",
            why: e.to_string(),
        })?;
        Ok(Notifications::new(
            self.order_store()?,
            Arc::new(self.invoice_store()?),
            Arc::new(DynamoMessageLog::new(self.dynamodb(), self.table()?)),
            self.mailer()?,
            self.text_messenger()?,
            Arc::new(templates),
            Arc::new(PdfInvoices {
                font: self.pdf_font()?,
            }),
            seller,
        )
        .with_invoice_series(self.invoice_series()?)
        .with_credit_notes(self.credit_note_store()?, self.credit_note_renderer()?)
        .with_suppressions(self.order_store()?)
        .with_metrics(self.metrics()?))
    }

    /// `INVOICE_SERIES`: how many gapless series invoices are numbered in (1 to 99,
    /// default 1: `INV-2026-000123`; more: `INV-2026-03-000123`).
    pub fn invoice_series(&self) -> Result<InvoiceSeries, ConfigError> {
        let Some(text) = self.settings.get("INVOICE_SERIES") else {
            return Ok(InvoiceSeries::ONE);
        };
        text.parse()
            .ok()
            .and_then(InvoiceSeries::new)
            .ok_or_else(|| ConfigError::Invalid {
                setting: "INVOICE_SERIES",
                why: format!(
                    "{text:?} is not a whole number from 1 to {}",
                    InvoiceSeries::MAX
                ),
            })
    }

    /// `MAIL_FROM` (`Name <address>` or an address: SES's verified identity, or
    /// SendGrid's verified sender); in local mode [`DEV_MAIL_FROM`] unless set.
    fn mail_from(&self) -> Result<String, ConfigError> {
        let from = match self.settings.get("MAIL_FROM") {
            Some(from) => from,
            None if self.settings.local_mode() => DEV_MAIL_FROM,
            None => return Err(ConfigError::Missing("MAIL_FROM")),
        };
        let (_, address) = split_mailbox(from);
        if !crate::domain::contact::is_email(&address) {
            return Err(ConfigError::Invalid {
                setting: "MAIL_FROM",
                why: format!("{from:?} is not `Name <address>` or an address"),
            });
        }
        Ok(from.to_string())
    }

    fn mailer(&self) -> Result<Arc<dyn Mailer>, ConfigError> {
        let from = self.mail_from()?;
        let invalid = |setting, why: String| ConfigError::Invalid { setting, why };
        match self.settings.get("MAIL_PROVIDER").unwrap_or("ses") {
            "ses" => Ok(Arc::new(SesMailer::new(
                aws_sdk_sesv2::Client::new(&self.sdk),
                from,
                self.settings
                    .get("SES_CONFIGURATION_SET")
                    .map(str::to_string),
            ))),
            "sendgrid" => {
                let key = self.required_key("SENDGRID_API_KEY")?;
                let url = self
                    .settings
                    .get("SENDGRID_API_URL")
                    .unwrap_or(SENDGRID_DEFAULT_URL);
                let mailer = SendGridMailer::new(url, key, &from)
                    .map_err(|why| invalid("SENDGRID_API_URL", why))?;
                Ok(Arc::new(mailer))
            }
            other => Err(invalid(
                "MAIL_PROVIDER",
                format!("{other:?} is not ses or sendgrid"),
            )),
        }
    }

    /// Twilio when `TWILIO_ACCOUNT_SID` is set (then `TWILIO_AUTH_TOKEN` and
    /// `TWILIO_FROM`, a number or sender id, are required; `TWILIO_API_URL` defaults
    /// to [`TWILIO_DEFAULT_URL`]); otherwise no SMS.
    fn text_messenger(&self) -> Result<Option<Arc<dyn TextMessenger>>, ConfigError> {
        let Some(sid) = self.settings.get("TWILIO_ACCOUNT_SID") else {
            return Ok(None);
        };
        let token = self.required_key("TWILIO_AUTH_TOKEN")?;
        let from = self.settings.required("TWILIO_FROM")?;
        let url = self
            .settings
            .get("TWILIO_API_URL")
            .unwrap_or(TWILIO_DEFAULT_URL);
        let twilio =
            TwilioMessenger::new(url, sid, token, from).map_err(|why| ConfigError::Invalid {
                setting: "TWILIO_API_URL",
                why,
            })?;
        Ok(Some(Arc::new(twilio)))
    }

    /// `INVOICE_SELLER`: `{"name", "address": [lines], "tax_id"?, "email"?}`; in
    /// local mode a demo seller unless set.
    fn seller(&self) -> Result<Seller, ConfigError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct SellerSetting {
            name: String,
            address: Vec<String>,
            #[serde(default)]
            tax_id: Option<String>,
            #[serde(default)]
            email: Option<String>,
        }
        let text = match self.settings.get("INVOICE_SELLER") {
            Some(text) => text,
            None if self.settings.local_mode() => DEV_INVOICE_SELLER,
            None => return Err(ConfigError::Missing("INVOICE_SELLER")),
        };
        let seller: SellerSetting =
            serde_json::from_str(text).map_err(|e| ConfigError::Invalid {
                setting: "INVOICE_SELLER",
                why: e.to_string(),
            })?;
        if seller.name.trim().is_empty() {
            return Err(ConfigError::Invalid {
                setting: "INVOICE_SELLER",
                why: "name must not be blank".into(),
            });
        }
        Ok(Seller {
            name: seller.name,
            address: seller.address,
            tax_id: seller.tax_id,
            email: seller.email,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_deadline(deadline: Option<&str>) -> Wiring {
        let mut settings = Settings::default().with("TABLE_NAME", "orders");
        if let Some(deadline) = deadline {
            settings = settings.with("WEBHOOK_BATCH_DEADLINE", deadline);
        }
        let sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        Wiring::new(settings, sdk)
    }

    #[test]
    fn the_webhook_batch_deadline_is_a_positive_number_of_seconds() {
        for good in [None, Some("20"), Some("12.5"), Some(" 1 ")] {
            assert!(with_deadline(good).deliveries().is_ok(), "{good:?}");
        }
        for bad in ["0", "-3", "soon", "NaN", "inf", "901"] {
            let err = with_deadline(Some(bad)).deliveries().err().expect(bad);
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        setting: "WEBHOOK_BATCH_DEADLINE",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    fn with_limit(limit: Option<&str>) -> Wiring {
        let mut settings = Settings::default();
        if let Some(limit) = limit {
            settings = settings.with("ORDER_CREATE_LIMIT", limit);
        }
        Wiring::new(settings, SdkConfig::builder().build())
    }

    #[test]
    fn the_create_limit_defaults_and_can_be_turned_off() {
        let default = RateLimit::parse(DEFAULT_CREATE_LIMIT).unwrap();
        assert_eq!(with_limit(None).create_limit().unwrap(), default);
        assert_eq!(
            with_limit(Some("3/60")).create_limit().unwrap(),
            Some(RateLimit {
                count: 3,
                window: 60
            })
        );
        assert_eq!(with_limit(Some("0")).create_limit().unwrap(), None);
    }

    /// A bad limit stops the function at init, naming the setting.
    #[test]
    fn a_bad_create_limit_is_refused_naming_the_setting() {
        for bad in ["10", "ten/60", "10/0", "0/60"] {
            let err = with_limit(Some(bad)).create_limit().unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        setting: "ORDER_CREATE_LIMIT",
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().starts_with("ORDER_CREATE_LIMIT: "), "{err}");
        }
    }
    use aws_config::{BehaviorVersion, Region};

    /// No endpoint is ever called: building clients does not connect.
    fn wiring(settings: Settings) -> Wiring {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        Wiring::new(settings, sdk)
    }

    fn deployed() -> Settings {
        Settings::default()
            .with("TABLE_NAME", "orders")
            .with("JWT_SECRET", "a-deployed-secret-of-at-least-32-bytes")
    }

    fn refusal<T>(built: Result<T, ConfigError>) -> String {
        match built {
            Ok(_) => panic!("built with a setting missing"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn listing_needs_a_cursor_secret_outside_local_mode_and_nothing_else_does() {
        let why = refusal(wiring(deployed()).order_list_api());
        assert!(why.contains("CURSOR_SECRET_ARN"), "{why}");
        let why = refusal(wiring(deployed()).export_api());
        assert!(why.contains("CURSOR_SECRET_ARN"), "{why}");
        // get-order, cancel-order, …: no cursor, no secret.
        assert!(wiring(deployed()).order_api().is_ok());
        assert!(wiring(deployed()).privacy_api().is_ok());

        let strong = "a-cursor-secret-of-at-least-32-bytes";
        assert!(
            wiring(deployed().with("CURSOR_SECRET", strong))
                .order_list_api()
                .is_ok()
        );
        let why = refusal(wiring(deployed().with("CURSOR_SECRET", "s3cret")).order_list_api());
        assert!(why.starts_with("CURSOR_SECRET: "), "{why}");
        // In Lambda, only by ARN.
        let why = refusal(
            wiring(
                deployed()
                    .with("CURSOR_SECRET", strong)
                    .with("AWS_LAMBDA_FUNCTION_NAME", "list-orders"),
            )
            .order_list_api(),
        );
        assert!(why.contains("CURSOR_SECRET_ARN"), "{why}");
        assert!(
            wiring(deployed().with(LOCAL_MODE, "true"))
                .order_list_api()
                .is_ok()
        );
    }

    #[test]
    fn payments_are_off_without_a_stripe_key_and_their_functions_refuse_to_start() {
        let off = wiring(deployed());
        assert!(off.payment_gateway().unwrap().is_none());
        assert!(refusal(off.payment_api()).contains("STRIPE_SECRET_KEY"));
        let on = deployed().with("STRIPE_SECRET_KEY", "sk_test_123");
        assert!(wiring(on.clone()).payment_gateway().unwrap().is_some());
        assert!(refusal(wiring(on.clone()).payment_api()).contains("STRIPE_WEBHOOK_SECRET"));
        assert!(
            wiring(on.with("STRIPE_WEBHOOK_SECRET", "whsec_1"))
                .payment_api()
                .is_ok()
        );
        let why =
            refusal(wiring(deployed().with("STRIPE_SECRET_KEY", "pk_live_oops")).payment_gateway());
        assert!(why.contains("STRIPE_SECRET_KEY"), "{why}");
    }

    #[test]
    fn the_pending_payment_ttl_is_a_duration() {
        let ttl = |text: &str| {
            wiring(Settings::default().with("PENDING_PAYMENT_TTL", text)).pending_payment_ttl()
        };
        assert_eq!(
            wiring(Settings::default()).pending_payment_ttl().unwrap(),
            Duration::from_secs(86_400)
        );
        assert_eq!(ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(ttl("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(ttl("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(ttl("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["0", "-1", "soon", "5w", "h"] {
            let err = ttl(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("PENDING_PAYMENT_TTL: "),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_checkout_api_needs_a_cart_source() {
        let why = refusal(wiring(deployed()).checkout_api());
        assert!(
            why.contains("CARTS_TABLE") && why.contains("CART_API_URL"),
            "{why}"
        );
        // Local mode supplies secrets, never a cart source.
        let why = refusal(wiring(deployed().with(LOCAL_MODE, "true")).checkout_api());
        assert!(why.contains("CARTS_TABLE"), "{why}");

        assert!(
            wiring(deployed().with("CARTS_TABLE", "carts"))
                .checkout_api()
                .is_ok()
        );
        assert!(
            wiring(deployed().with("CART_API_URL", "https://carts.example"))
                .checkout_api()
                .is_ok()
        );
        let why = refusal(wiring(deployed().with("CART_API_URL", "not a url")).checkout_api());
        assert!(why.contains("CART_API_URL"), "{why}");
    }
}
