//! Telling the customer: an email on every key change of an order (placed, paid,
//! shipped, delivered, cancelled, refunded, and each step of a return: requested,
//! approved with its label, declined with the reason, cancelled, received), an SMS when the parcel moves, the
//! invoice, issued here on `order.confirmed` and attached to that email, and the
//! credit note of every refund, issued here on the refund's event and attached to
//! the refund's email (the notifications queue's messages; `inbound::sqs` hands them
//! over one by one).
//!
//! The event says which order and what happened; the stored order, read strongly
//! consistent, says where to write (its contact is never in an event), and an event
//! it did not go through is forged: dead-lettered with no effect.
//!
//! Exactly one message per event and channel: each is claimed in one conditional
//! write before it is sent and marked sent after. A redelivery finds it sent; a
//! concurrent twin finds it held and is retried later (by then it is sent, or its
//! holder released it, or the lease ran out). A failed send releases the claim and
//! leaves the message on the queue, so it is retried and then dead-lettered.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::billing::{CreditNote, CreditNoteDraft};
use crate::domain::fulfillment::returns::ReturnId;
use crate::domain::invoice::{Invoice, InvoiceDraft, InvoiceSeries, Seller};
use crate::domain::notification::{Channel, Notice, UNPAID_MESSAGES_PER_RECIPIENT_PER_DAY};
use crate::domain::payment::refund::refund_of_change;
use crate::domain::payment::{Refund, UNPAID};
use crate::domain::suppression::{SuppressionReason, note_unreachable};
use crate::domain::{Order, OrderId};
use crate::events::Envelope;
use crate::ports::{
    Attachment, Claim, CreditNoteRenderer, CreditNoteStore, EmailMessage, InvoiceRenderer,
    InvoiceStore, Mailer, MessageLog, MessageTemplates, Metric, MetricSet, Metrics, NoMetrics,
    OrderStore, SendError, StoreError, TemplateError, TextMessage, TextMessenger,
};
use crate::ports::{ChangeOutcome, Suppressions};

/// How long a claim holds before another attempt may take it over: well above one
/// send (the adapters time out after 10 s), well below the queue's visibility
/// timeout (180 s), so a crashed sender's message finds it free when it comes back.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);

pub struct Notifications {
    store: Arc<dyn OrderStore>,
    invoices: Arc<dyn InvoiceStore>,
    log: Arc<dyn MessageLog>,
    mailer: Arc<dyn Mailer>,
    /// `None`: SMS is not configured, and no text is claimed or sent.
    texts: Option<Arc<dyn TextMessenger>>,
    templates: Arc<dyn MessageTemplates>,
    renderer: Arc<dyn InvoiceRenderer>,
    seller: Seller,
    /// The series invoices are numbered in (`INVOICE_SERIES`).
    series: InvoiceSeries,
    /// `None`: no credit notes are issued (set with [`Notifications::with_credit_notes`]).
    credit_notes: Option<CreditNotes>,
    metrics: Arc<dyn Metrics>,
    /// Addresses not to mail (bounced, complained): `None` checks none.
    suppressions: Option<Arc<dyn Suppressions>>,
}

/// Where credit notes are numbered and kept, and how they are printed.
struct CreditNotes {
    store: Arc<dyn CreditNoteStore>,
    renderer: Arc<dyn CreditNoteRenderer>,
}

/// The documents a message carries: the invoice on confirmation, the credit note on
/// a refund; and the return a return's message is about.
#[derive(Default)]
struct Documents {
    invoice: Option<Invoice>,
    credit_note: Option<CreditNote>,
    return_id: Option<ReturnId>,
}

/// Why a message was not (fully) handled. Every variant leaves it on the queue: it is
/// received again, and after `maxReceiveCount` it is dead-lettered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("not a notification message: {0}")]
    Poison(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{channel} for {event_id}: {error}")]
    Send {
        event_id: String,
        channel: &'static str,
        error: SendError,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{channel} for {event_id} is being sent by another attempt; retried later")]
    Held {
        event_id: String,
        channel: &'static str,
    },
}

/// What became of one channel's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Sent now, with the provider's id.
    Sent(String),
    /// An earlier attempt sent it.
    AlreadySent,
    /// The contact has no address for the channel (or SMS is not configured).
    NoAddress,
    /// Not sent: the address had its day's messages about unpaid orders.
    Capped,
    /// Not sent: the address bounced or complained; the order's history says so.
    Suppressed,
}

/// What handling one message did, for the log and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Told {
        notice: Notice,
        invoice: Option<String>,
        /// The number of the credit note of the refund told of (issued now or before).
        credit_note: Option<String>,
        deliveries: Vec<(Channel, Delivery)>,
    },
    Ignored(String),
}

#[allow(clippy::too_many_arguments)]
impl Notifications {
    pub fn new(
        store: Arc<dyn OrderStore>,
        invoices: Arc<dyn InvoiceStore>,
        log: Arc<dyn MessageLog>,
        mailer: Arc<dyn Mailer>,
        texts: Option<Arc<dyn TextMessenger>>,
        templates: Arc<dyn MessageTemplates>,
        renderer: Arc<dyn InvoiceRenderer>,
        seller: Seller,
    ) -> Self {
        Notifications {
            store,
            invoices,
            log,
            mailer,
            texts,
            templates,
            renderer,
            seller,
            series: InvoiceSeries::ONE,
            credit_notes: None,
            metrics: Arc::new(NoMetrics),
            suppressions: None,
        }
    }

    /// Mails no suppressed address (`services::suppressions`).
    pub fn with_suppressions(mut self, suppressions: Arc<dyn Suppressions>) -> Self {
        self.suppressions = Some(suppressions);
        self
    }

    /// Numbers invoices in `series` gapless series instead of one.
    pub fn with_invoice_series(mut self, series: InvoiceSeries) -> Self {
        self.series = series;
        self
    }

    /// Issues a credit note for every refund told of, numbered in `store` (in the
    /// invoices' series) and attached as `renderer` prints it.
    pub fn with_credit_notes(
        mut self,
        store: Arc<dyn CreditNoteStore>,
        renderer: Arc<dyn CreditNoteRenderer>,
    ) -> Self {
        self.credit_notes = Some(CreditNotes { store, renderer });
        self
    }

    /// Reports `NotificationFailures` (by channel) for every send that failed.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Handles one message of the notifications queue (an EventBridge event as a
    /// rule delivers it). An error leaves the message on the queue.
    pub async fn handle(&self, body: Option<&str>) -> Result<Outcome, NotifyError> {
        let body = body.ok_or_else(|| NotifyError::Poison("no body".into()))?;
        let envelope: Envelope =
            serde_json::from_str(body).map_err(|e| NotifyError::Poison(e.to_string()))?;
        let event = &envelope.detail;
        // A payment change is told by the payment status its order reached.
        let payment_status = event.order.value()["payment_status"]
            .as_str()
            .map(str::to_string);
        let Some(notice) = Notice::for_event(&envelope.detail_type, payment_status.as_deref())
        else {
            return Ok(Outcome::Ignored(envelope.detail_type.clone()));
        };
        let id = OrderId::parse(&event.order_id)
            .ok_or_else(|| NotifyError::Poison(format!("not an order id: {:?}", event.order_id)))?;
        let order = self
            .store
            .get_since(&id, event.sequence)
            .await?
            .ok_or_else(|| NotifyError::Poison(format!("no order {id}")))?;
        if !event.recorded_in(&order) {
            return Err(NotifyError::Poison(format!(
                "event {} is not a change the stored order went through",
                event.event_id
            )));
        }

        let documents = match notice {
            Notice::Confirmed => Documents {
                invoice: self.issue_invoice(&order).await?,
                ..Documents::default()
            },
            Notice::Refunded { .. } => Documents {
                credit_note: match refund_of_change(&order, event.sequence) {
                    Some(refund) => self.issue_credit_note(&order, refund).await?,
                    None => None,
                },
                ..Documents::default()
            },
            // The return the event names, as the stored order has it now.
            Notice::Return(_) => {
                let return_id = event
                    .return_id
                    .as_deref()
                    .and_then(ReturnId::parse)
                    .filter(|r| order.return_of(r).is_some())
                    .ok_or_else(|| {
                        NotifyError::Poison(format!(
                            "event {} names no return of order {id}",
                            event.event_id
                        ))
                    })?;
                Documents {
                    return_id: Some(return_id),
                    ..Documents::default()
                }
            }
            _ => Documents::default(),
        };
        let mut deliveries = Vec::new();
        for channel in notice.channels() {
            let delivery = self
                .deliver(&event.event_id, *channel, &notice, &order, &documents)
                .await?;
            deliveries.push((*channel, delivery));
        }
        Ok(Outcome::Told {
            notice,
            invoice: documents.invoice.map(|i| i.number.to_string()),
            credit_note: documents.credit_note.map(|c| c.number.to_string()),
            deliveries,
        })
    }

    /// The credit note of `refund`, one of `order`'s, issued now unless an earlier
    /// attempt did (the store numbers it once per refund). It corrects the order's
    /// invoice, issued first if the confirmation's message has not been handled yet.
    /// `None` when credit notes are off, the order was never confirmed (no invoice to
    /// correct), or the refund has no allocation (money beyond the order's total).
    pub async fn issue_credit_note(
        &self,
        order: &Order,
        refund: &Refund,
    ) -> Result<Option<CreditNote>, StoreError> {
        let Some(credit_notes) = &self.credit_notes else {
            return Ok(None);
        };
        let Some(invoice) = self.issue_invoice(order).await? else {
            return Ok(None);
        };
        match CreditNoteDraft::for_refund(refund, &invoice) {
            Some(draft) => Ok(Some(credit_notes.store.issue(&draft).await?)),
            None => Ok(None),
        }
    }

    /// The order's invoice, issued now unless an earlier attempt did: the store
    /// numbers it once per order.
    pub async fn issue_invoice(&self, order: &Order) -> Result<Option<Invoice>, StoreError> {
        match InvoiceDraft::for_order(order, &self.seller) {
            Some(mut draft) => {
                draft.series = self.series.of(&order.id);
                Ok(Some(self.invoices.issue(&draft).await?))
            }
            None => Ok(None),
        }
    }

    async fn deliver(
        &self,
        event_id: &str,
        channel: Channel,
        notice: &Notice,
        order: &Order,
        documents: &Documents,
    ) -> Result<Delivery, NotifyError> {
        let address = match channel {
            Channel::Email => order.contact.email.as_deref(),
            Channel::Sms if self.texts.is_some() => order.contact.phone.as_deref(),
            Channel::Sms => None,
        };
        let Some(address) = address else {
            return Ok(Delivery::NoAddress);
        };
        let now = OffsetDateTime::now_utc();
        let token = match self
            .log
            .claim(event_id, channel, now, now + CLAIM_LEASE)
            .await?
        {
            Claim::Claimed(token) => token,
            Claim::Delivered => return Ok(Delivery::AlreadySent),
            Claim::Held => {
                return Err(NotifyError::Held {
                    event_id: event_id.to_string(),
                    channel: channel.as_str(),
                });
            }
        };
        if let (Channel::Email, Some(list)) = (channel, &self.suppressions)
            && let Some(suppression) = list.suppressed(address).await?
        {
            tracing::warn!(
                event_id,
                reason = suppression.reason.as_str(),
                "address suppressed; not sent"
            );
            self.note_unreachable(order, channel, suppression.reason)
                .await?;
            self.log
                .mark_sent(event_id, channel, now, "suppressed")
                .await?;
            return Ok(Delivery::Suppressed);
        }
        // About an order nobody paid for, an address gets a few messages a day: the
        // create's contact is whatever its caller sent.
        if UNPAID.contains(&order.payment_status)
            && !self
                .log
                .count_for_recipient(address, now, UNPAID_MESSAGES_PER_RECIPIENT_PER_DAY)
                .await?
        {
            tracing::warn!(
                event_id,
                channel = channel.as_str(),
                "daily cap of messages about unpaid orders reached; not sent"
            );
            self.log.mark_sent(event_id, channel, now, "capped").await?;
            return Ok(Delivery::Capped);
        }
        match self
            .send(event_id, channel, address, notice, order, documents)
            .await
        {
            Ok(provider_id) => {
                self.log
                    .mark_sent(event_id, channel, OffsetDateTime::now_utc(), &provider_id)
                    .await?;
                Ok(Delivery::Sent(provider_id))
            }
            Err(err) => {
                self.metrics.record(
                    MetricSet::of(Metric::NotificationFailures, 1.0)
                        .by("channel", channel.as_str()),
                );
                // Released, the retry claims at once instead of waiting out the lease.
                if let Err(release) = self.log.release(event_id, channel, &token).await {
                    tracing::warn!(event_id, error = %release, "releasing a failed send's claim failed; it lapses with its lease");
                }
                Err(err)
            }
        }
    }

    /// Notes on the order that the customer could not be reached on `channel`, once,
    /// planned again from the order as found when it changed meanwhile.
    async fn note_unreachable(
        &self,
        order: &Order,
        channel: Channel,
        reason: SuppressionReason,
    ) -> Result<(), StoreError> {
        let Some(list) = &self.suppressions else {
            return Ok(());
        };
        let mut current = order.clone();
        for _ in 0..3 {
            let Some(noted) =
                note_unreachable(&current, channel, reason, OffsetDateTime::now_utc())
            else {
                return Ok(());
            };
            match list.note_unreachable(&noted).await? {
                ChangeOutcome::Changed(_) | ChangeOutcome::Refused(None) => return Ok(()),
                ChangeOutcome::Refused(Some(found)) => current = *found,
            }
        }
        Err(StoreError::Contention)
    }

    async fn send(
        &self,
        event_id: &str,
        channel: Channel,
        to: &str,
        notice: &Notice,
        order: &Order,
        documents: &Documents,
    ) -> Result<String, NotifyError> {
        let failed = |error| NotifyError::Send {
            event_id: event_id.to_string(),
            channel: channel.as_str(),
            error,
        };
        match channel {
            Channel::Email => {
                let rendered = match (&documents.credit_note, &documents.return_id) {
                    (Some(note), _) => self.templates.refund_email(notice, order, note)?,
                    (None, Some(return_id)) => {
                        self.templates.return_email(notice, order, return_id)?
                    }
                    (None, None) => {
                        self.templates
                            .email(notice, order, documents.invoice.as_ref())?
                    }
                };
                let pdf = |number: String, content: Vec<u8>| Attachment {
                    filename: format!("{number}.pdf"),
                    content_type: "application/pdf".into(),
                    content,
                };
                let mut attachments = Vec::new();
                if let Some(invoice) = &documents.invoice {
                    attachments.push(pdf(invoice.number.to_string(), self.renderer.pdf(invoice)));
                }
                if let (Some(note), Some(credit_notes)) =
                    (&documents.credit_note, &self.credit_notes)
                {
                    let content = credit_notes.renderer.pdf(note);
                    attachments.push(pdf(note.number.to_string(), content));
                }
                let message = EmailMessage {
                    to: to.to_string(),
                    subject: rendered.subject,
                    text: rendered.text,
                    html: rendered.html,
                    attachments,
                };
                self.mailer.send(&message).await.map_err(failed)
            }
            Channel::Sms => {
                let Some(texts) = &self.texts else {
                    return Err(failed(SendError::Refused("SMS is not configured".into())));
                };
                let message = TextMessage {
                    to: to.to_string(),
                    body: self.templates.text(notice, order)?,
                };
                texts.send(&message).await.map_err(failed)
            }
        }
    }
}
