//! The money and the goods, after each phase: what the clients' flows set going in the
//! background — a cancellation's refund, the invoices and credit notes the
//! notifications consumer issues and emails — is waited for (polling, with a
//! deadline), then checked against what customers and the shop rely on: one invoice
//! per confirmed order, one credit note and one Stripe refund per refund, each return
//! received once (one refund, one restock), each document emailed once.
//!
//! Read as the users read it: the API (as an admin), localstripe's refunds, the
//! messages SES on the emulator sent, and the table's restock records.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::checks::{Check, first_few};
use super::clients::{Placed, RETURN_REFUND, RETURNED_PRODUCT, cents, email};
use super::stack::Stack;
use crate::Error;

/// What one order's books hold, as read once they settled (or at the deadline).
#[derive(Debug, Clone, Default)]
pub struct Books {
    /// The order, as an admin reads it.
    pub order: Value,
    /// Its invoice (`None`: 404).
    pub invoice: Option<Value>,
    pub credit_notes: Vec<Value>,
    /// `GET …/returns`.
    pub returns: Value,
    /// The amounts of Stripe's refunds of its intent, in cents, smallest first.
    pub stripe_refunds: Vec<i64>,
    /// Why Stripe's refunds could not be listed, if they could not.
    pub stripe_error: Option<String>,
}

/// One message SES sent (the fields the checks use).
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub subject: String,
    pub attachments: Vec<String>,
}

/// What the run has read of the books and the mail so far, across phases.
pub struct Ledger {
    http: reqwest::Client,
    api: String,
    stripe: String,
    emulator: String,
    admin: String,
    /// Every order's books, by order id.
    pub books: HashMap<String, Books>,
    /// Every message SES sent so far, in order.
    pub mail: Vec<Mail>,
    /// Invoice numbers seen, with their order.
    invoice_numbers: HashMap<String, String>,
}

/// The books of one phase's orders, once settled.
pub struct Settled {
    pub waited: Duration,
    /// What was not as the flows left it at the deadline (the first few).
    pub waiting_for: Vec<String>,
}

impl Ledger {
    pub fn new(stack: &Stack) -> Ledger {
        Ledger {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("a plain HTTP client builds"),
            api: stack.api.clone(),
            stripe: stack.stripe.url.clone(),
            emulator: stack.emulator.url.clone(),
            admin: orders_tests::token("admin", orders_tests::ADMIN),
            books: HashMap::new(),
            mail: Vec::new(),
            invoice_numbers: HashMap::new(),
        }
    }

    /// Polls every order of `placed` until its books are as its flow left them — the
    /// payment status and refunds its client expects, a credit note per refund, an
    /// invoice once confirmed — or `limit` passes; then reads Stripe's refunds and
    /// the mail.
    pub async fn settle(&mut self, placed: &[Placed], limit: Duration) -> Result<Settled, Error> {
        let started = Instant::now();
        let mut next_report = started + PROGRESS_EVERY;
        let mut waiting: Vec<&Placed> = placed.iter().collect();
        let mut why = Vec::new();
        loop {
            let mut still = Vec::new();
            why.clear();
            for order in waiting {
                let books = self.read(order).await?;
                if let Some(reason) = unsettled(order, &books) {
                    why.push(format!("{}: {reason}", order.order_id));
                    still.push(order);
                }
                self.books.insert(order.order_id.clone(), books);
            }
            waiting = still;
            if waiting.is_empty() || started.elapsed() > limit {
                break;
            }
            progress(&mut next_report, started, "the books", &why);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        for order in placed {
            if let Some(intent) = &order.intent_id {
                let refunds = self.stripe_refunds(intent).await;
                if let Some(books) = self.books.get_mut(&order.order_id) {
                    match refunds {
                        Ok(refunds) => {
                            books.stripe_refunds = refunds;
                            books.stripe_error = None;
                        }
                        Err(why) => books.stripe_error = Some(why),
                    }
                }
            }
        }
        // The email goes out after its document is issued: read the mail until every
        // document has gone, or the deadline.
        loop {
            self.read_mail().await?;
            let unsent: Vec<String> = self
                .documents_sent(placed)
                .into_iter()
                .filter(|(_, n)| *n == 0)
                .map(|(what, _)| format!("{what} not mailed"))
                .collect();
            if unsent.is_empty() || started.elapsed() > limit {
                break;
            }
            progress(&mut next_report, started, "the mail", &unsent);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        why.truncate(5);
        Ok(Settled {
            waited: started.elapsed(),
            waiting_for: why,
        })
    }

    /// One order's books through the API, as an admin.
    async fn read(&self, order: &Placed) -> Result<Books, Error> {
        let this = format!("/api/orders/{}", order.order_id);
        let (_, order_json) = self.get(&this).await?;
        let (status, invoice) = self.get(&format!("{this}/invoice")).await?;
        let (_, notes) = self.get(&format!("{this}/credit-notes")).await?;
        let returns = if order.return_id.is_some() {
            self.get(&format!("{this}/returns")).await?.1
        } else {
            Value::Null
        };
        Ok(Books {
            order: order_json,
            invoice: (status == 200).then_some(invoice),
            credit_notes: notes["credit_notes"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            returns,
            stripe_refunds: Vec::new(),
            stripe_error: None,
        })
    }

    async fn get(&self, path: &str) -> Result<(u16, Value), Error> {
        let response = self
            .http
            .get(format!("{}{path}", self.api))
            .bearer_auth(&self.admin)
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// The amounts Stripe refunded of `intent`, in cents, smallest first (localstripe
    /// lists refunds made in one second in no fixed order).
    /// (An order's refunds are a few: one page of 100 holds them. localstripe lists an
    /// intent's refunds through its latest charge, and cannot for an intent never
    /// charged: answered as an error, not as a failed run.)
    async fn stripe_refunds(&self, intent: &str) -> Result<Vec<i64>, String> {
        let response = self
            .http
            .get(format!(
                "{}/v1/refunds?payment_intent={intent}&limit=100",
                self.stripe
            ))
            .basic_auth(orders_dev::local::DEV_STRIPE_SECRET_KEY, None::<&str>)
            .send()
            .await
            .map_err(|e| format!("listing its Stripe refunds: {e}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("listing its Stripe refunds: {e}"))?;
        let list: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() || !list["data"].is_array() {
            return Err(format!(
                "localstripe answered {status} to the list of its refunds: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        }
        let mut amounts: Vec<i64> = list["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["amount"].as_i64())
            .collect();
        amounts.sort_unstable();
        Ok(amounts)
    }

    /// The messages SES has sent since the last read (scripts/emulator_ses.py).
    async fn read_mail(&mut self) -> Result<(), Error> {
        let response = self
            .http
            .get(format!(
                "{}/_ses/messages?after={}",
                self.emulator,
                self.mail.len()
            ))
            .send()
            .await?;
        let page: Value = serde_json::from_slice(&response.bytes().await?)?;
        for message in page["messages"].as_array().into_iter().flatten() {
            let texts = |v: &Value| -> Vec<String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_lowercase))
                    .collect()
            };
            self.mail.push(Mail {
                to: texts(&message["to"]),
                subject: message["subject"].as_str().unwrap_or_default().to_string(),
                attachments: message["attachments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a["filename"].as_str().map(str::to_string))
                    .collect(),
            });
        }
        Ok(())
    }

    /// Every confirmed order has one invoice, for its total, with a number no other
    /// invoice has; an order never confirmed has none.
    pub fn invoices(&mut self, placed: &[Placed]) -> Check {
        let mut problems = Vec::new();
        let mut issued = 0;
        for order in placed {
            let books = self.books_of(order);
            match (&books.invoice, order.confirmed) {
                (Some(invoice), true) => {
                    issued += 1;
                    let number = invoice["invoice_number"].as_str().unwrap_or_default();
                    if invoice["order_id"] != order.order_id.as_str()
                        || cents(&invoice["total"]) != cents(&books.order["total"])
                    {
                        problems.push(format!(
                            "{}: invoice {number} for {} of {}",
                            order.order_id, invoice["total"], invoice["order_id"]
                        ));
                    }
                    match self
                        .invoice_numbers
                        .insert(number.to_string(), order.order_id.clone())
                    {
                        Some(other) if other != order.order_id => problems.push(format!(
                            "{number} is the invoice of {other} and of {}",
                            order.order_id
                        )),
                        _ => {}
                    }
                }
                (None, true) => problems.push(format!("{}: confirmed, no invoice", order.order_id)),
                (Some(invoice), false) if order.stopped.is_none() => problems.push(format!(
                    "{}: never confirmed, invoice {}",
                    order.order_id, invoice["invoice_number"]
                )),
                _ => {}
            }
        }
        Check::new(
            "every confirmed order has exactly one invoice (its own number, its total); no other order has one",
            problems.is_empty(),
            format!(
                "{} confirmed, {issued} invoices{}",
                placed.iter().filter(|o| o.confirmed).count(),
                first_few(&problems)
            ),
        )
    }

    /// Every refund, whatever made it (an admin, a cancellation, a return), is on the
    /// order for the amount asked, has exactly one credit note for that amount, and
    /// is exactly one refund at Stripe; the payment status is what the client expects.
    pub fn refunds(&self, placed: &[Placed]) -> Check {
        let mut problems = Vec::new();
        let (mut refunds, mut notes) = (0, 0);
        for order in placed.iter().filter(|o| o.intent_id.is_some()) {
            let books = self.books_of(order);
            let id = &order.order_id;
            let made: Vec<(String, Option<i64>)> = books.order["payment"]["refunds"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        r["refund_id"].as_str().unwrap_or_default().to_string(),
                        cents(&r["amount"]),
                    )
                })
                .collect();
            refunds += made.len();
            notes += books.credit_notes.len();
            let mut amounts: Vec<i64> = made.iter().filter_map(|(_, a)| *a).collect();
            amounts.sort_unstable();
            if order.stopped.is_none() {
                let mut asked = order.refunds.clone();
                asked.sort_unstable();
                if amounts != asked {
                    problems.push(format!("{id}: refunds {amounts:?}, asked {asked:?}"));
                }
                if let Some(expected) = order.payment_status
                    && books.order["payment_status"] != expected
                {
                    problems.push(format!(
                        "{id}: payment {}, expected {expected}",
                        books.order["payment_status"]
                    ));
                }
            }
            if let Some(why) = &books.stripe_error {
                problems.push(format!("{id}: {why}"));
            } else if books.stripe_refunds != amounts {
                problems.push(format!(
                    "{id}: Stripe refunded {:?}, the order lists {amounts:?}",
                    books.stripe_refunds
                ));
            }
            for (refund_id, amount) in &made {
                let of_it: Vec<&Value> = books
                    .credit_notes
                    .iter()
                    .filter(|n| n["refund_id"] == refund_id.as_str())
                    .collect();
                match of_it.as_slice() {
                    [note] if cents(&note["total"]) == *amount => {}
                    [note] => problems.push(format!(
                        "{id}: credit note {} of {} for refund {refund_id} of {amount:?}",
                        note["number"], note["total"]
                    )),
                    more => problems.push(format!(
                        "{id}: refund {refund_id} has {} credit notes",
                        more.len()
                    )),
                }
            }
            if books.credit_notes.len() != made.len() {
                problems.push(format!(
                    "{id}: {} credit notes for {} refunds",
                    books.credit_notes.len(),
                    made.len()
                ));
            }
        }
        Check::new(
            "every refund has exactly one credit note and one Stripe refund, for the amount asked",
            problems.is_empty(),
            format!(
                "{refunds} refunds of {} card orders, {notes} credit notes{}",
                placed.iter().filter(|o| o.intent_id.is_some()).count(),
                first_few(&problems)
            ),
        )
    }

    /// Every return the warehouse received was received once: restocked once (one
    /// restock record, `restocks`: return id → records), refunded once, for the line.
    pub fn returns(&self, placed: &[Placed], restocks: &BTreeMap<String, usize>) -> Check {
        let mut problems = Vec::new();
        let asked: Vec<&Placed> = placed.iter().filter(|o| o.return_id.is_some()).collect();
        let mut received = 0;
        for order in &asked {
            let return_id = order.return_id.as_deref().unwrap_or_default();
            let books = self.books_of(order);
            let the_return = books.returns["returns"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["return_id"] == return_id);
            let restocked = restocks.get(return_id).copied().unwrap_or(0);
            let Some(r) = the_return else {
                problems.push(format!("{}: return {return_id} not listed", order.order_id));
                continue;
            };
            if !order.returned {
                continue;
            }
            received += 1;
            let refund = &r["refund"];
            if r["status"] != "received"
                || r["receipt"]["restocked"] != true
                || refund["status"] != "refunded"
                || cents(&refund["amount"]) != Some(RETURN_REFUND)
                || restocked != 1
            {
                problems.push(format!(
                    "{}: return {return_id} {}, restocked {} ({restocked} restock record(s)), refund {} of {}",
                    order.order_id,
                    r["status"],
                    r["receipt"]["restocked"],
                    refund["status"],
                    refund["amount"]
                ));
            }
        }
        Check::new(
            "every return received was received once: one restock, one refund of the line",
            problems.is_empty(),
            format!(
                "{} returns asked, {received} received ({RETURNED_PRODUCT} × 1, {}.{:02} each){}",
                asked.len(),
                RETURN_REFUND / 100,
                RETURN_REFUND % 100,
                first_few(&problems)
            ),
        )
    }

    /// Every card order's invoice reached its customer attached to the payment email,
    /// and every credit note attached to its refund's email: once each (`exactly`), or
    /// at least once. (Messages about an order not paid for — a bank transfer's, even
    /// confirmed — fall under the daily cap per address of such messages, which these
    /// customers, placing dozens of orders, reach: not compared.)
    pub fn documents_mailed(&self, placed: &[Placed], exactly: bool) -> Check {
        let sent = self.documents_sent(placed);
        let documents = sent.len();
        let problems: Vec<String> = sent
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(what, _)| format!("{what} never sent"))
            .collect();
        let duplicates: usize = sent.iter().map(|(_, n)| n.saturating_sub(1)).sum();
        Check::new(
            if exactly {
                "every paid order's invoice and credit notes were emailed to its customer exactly once, as PDFs"
            } else {
                "every paid order's invoice and credit notes were emailed to its customer (at least once), as PDFs"
            },
            problems.is_empty() && (!exactly || duplicates == 0),
            format!(
                "{documents} documents, {} not sent, {duplicates} duplicate(s); {} messages sent by SES in the run so far{}",
                problems.len(),
                self.mail.len(),
                first_few(&problems)
            ),
        )
    }

    /// Each document of a paid order in `placed` ("<number> of <order>"), and how many
    /// emails carried it to its customer: the invoice with the payment email (other
    /// emails may attach it again), a credit note with its refund's.
    fn documents_sent(&self, placed: &[Placed]) -> Vec<(String, usize)> {
        let mut sent = Vec::new();
        for order in placed
            .iter()
            .filter(|o| o.intent_id.is_some() && o.confirmed)
        {
            let books = self.books_of(order);
            let to = email(&order.user);
            let mut numbers: Vec<String> = books
                .credit_notes
                .iter()
                .filter_map(|n| n["number"].as_str().map(str::to_string))
                .collect();
            if let Some(number) = books
                .invoice
                .as_ref()
                .and_then(|i| i["invoice_number"].as_str())
            {
                numbers.push(number.to_string());
            }
            for number in numbers {
                let file = format!("{number}.pdf");
                let count = self
                    .mail
                    .iter()
                    .filter(|m| {
                        m.to.iter().any(|t| t.contains(&to)) && m.attachments.contains(&file)
                    })
                    .filter(|m| {
                        !number.starts_with("INV") || m.subject.starts_with("Payment received")
                    })
                    .count();
                sent.push((format!("{number} of {}", order.order_id), count));
            }
        }
        sent
    }

    fn books_of(&self, order: &Placed) -> Books {
        self.books.get(&order.order_id).cloned().unwrap_or_default()
    }
}

/// While waiting, how often what is still missing is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(15);

/// Prints what `what` still misses, once `next` has come (then moves `next` on).
fn progress(next: &mut Instant, started: Instant, what: &str, missing: &[String]) {
    if Instant::now() < *next {
        return;
    }
    *next += PROGRESS_EVERY;
    eprintln!(
        "load:   after {:.0} s {what} still miss {} thing(s){}",
        started.elapsed().as_secs_f64(),
        missing.len(),
        first_few(missing)
    );
}

/// What keeps `order`'s books from being as its flow left them; `None` once they are.
fn unsettled(order: &Placed, books: &Books) -> Option<String> {
    let refunds = books.order["payment"]["refunds"]
        .as_array()
        .map_or(0, Vec::len);
    // A flow that stopped short expects no payment status (`None`).
    if let Some(expected) = order.payment_status
        && (books.order["payment_status"] != expected || refunds < order.refunds.len())
    {
        return Some(format!(
            "payment {} with {refunds} refund(s), expected {expected} with {}",
            books.order["payment_status"],
            order.refunds.len()
        ));
    }
    if books.credit_notes.len() < refunds {
        return Some(format!(
            "{} credit note(s) for {refunds} refund(s)",
            books.credit_notes.len()
        ));
    }
    if order.confirmed && books.invoice.is_none() {
        return Some("no invoice yet".into());
    }
    None
}

/// The restock records (`RESTOCK#<return_id>`) in the table, by return id.
pub async fn restocks(stack: &Stack) -> Result<BTreeMap<String, usize>, Error> {
    let mut found = BTreeMap::new();
    for item in stack.scan(&["RESTOCK"]).await? {
        let pk = item
            .get("PK")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let id = pk.strip_prefix("RESTOCK#").unwrap_or(&pk).to_string();
        *found.entry(id).or_default() += 1;
    }
    Ok(found)
}
