//! A customer's rights over their data: erasure (GDPR article 17) and export
//! (articles 15 and 20), over the order store, the privacy store and the invoices.
//!
//! Erasure runs as a job, one per customer at a time: the request checks that no
//! order is still open (unless forced), records the job and erases the first page
//! of the customer's orders itself; each further page is one message on the erasure
//! queue, handled by `erase-customer-data`, which queues the next. Each order is
//! one conditional write on the version it was read at, so a retried or duplicated
//! page, or an order changed meanwhile, leaves exactly one erasure.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::billing::CreditNote;
use crate::domain::invoice::Invoice;
use crate::domain::privacy::{
    ErasureJob, ErasureState, OpenOrder, PageTally, erase, is_erased, still_open,
};
use crate::domain::{Order, Principal};
use crate::ports::{
    ChangeOutcome, CreditNoteStore, ErasureQueue, ErasureStart, InvoiceStore, MessageRecord,
    OrderQuery, OrderStore, PagePosition, PrivacyStore, StoreError,
};
use crate::services::orders::{open_cursor, seal_cursor};

/// Orders one erasure page handles (`ERASURE_PAGE_SIZE`): each is a conditional
/// write, so a page stays well inside a function's time.
pub const DEFAULT_ERASURE_PAGE: usize = 25;

/// The most open orders a refusal names (the count is exact up to this).
pub const MAX_OPEN_NAMED: usize = 50;

/// Orders read per page when looking for open ones.
const OPEN_CHECK_PAGE: usize = 100;

/// Pages of the customer's orders the check reads at most (10,000 orders). Past
/// that the request goes ahead; its job still leaves every open order as it is
/// unless forced (`erase_one`), and counts it as skipped.
const OPEN_CHECK_PAGES: usize = 100;

/// How long a running job may go without a page before a new request for it
/// carries it on itself (its queued continuation was lost).
pub const STALLED_AFTER: time::Duration = time::Duration::minutes(5);

/// Tries at erasing one order that keeps changing under the erasure.
const ERASE_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("{0}")]
    Forbidden(String),
    #[error("user_id must be 1 to 255 characters")]
    InvalidUser,
    #[error(
        "{} of the customer's orders are not yet delivered or cancelled, or have a return still open: {}; erase them once they are settled, or ask with \"force\": true",
        .0.len(),
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    OpenOrders(Vec<OpenOrder>),
    #[error("no erasure was requested for this customer")]
    NoErasure,
    #[error("the cursor is not valid for this export")]
    BadCursor,
    #[error("an order kept changing while it was erased; retry")]
    Contention,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PrivacyError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Contention => PrivacyError::Contention,
            StoreError::BadPosition => PrivacyError::BadCursor,
            other => PrivacyError::Store(other),
        }
    }
}

/// The answer to an erasure request: the job, and whether this request started it
/// (`false`: it joined the one running).
#[derive(Debug)]
pub struct Requested {
    pub job: ErasureJob,
    pub started: bool,
}

/// What a queued continuation did.
#[derive(Debug, PartialEq, Eq)]
pub enum Continued {
    /// Erased one more page; `true` when that was the last.
    Page { done: bool },
    /// Nothing: the job is done, another run replaced it, or a twin continuation
    /// handled this page first.
    Nothing,
}

/// One page of a customer's export: their orders (as stored, with parcels, returns
/// and history), and what is kept about them elsewhere (invoices, credit notes,
/// message records). A further kind is one more member here and one more read in
/// `export`.
#[derive(Debug)]
pub struct ExportPage {
    pub orders: Vec<Order>,
    pub invoices: Vec<Invoice>,
    pub credit_notes: Vec<CreditNote>,
    pub messages: Vec<MessageRecord>,
    pub next_cursor: Option<String>,
}

pub struct PrivacyService {
    orders: Arc<dyn OrderStore>,
    store: Arc<dyn PrivacyStore>,
    invoices: Arc<dyn InvoiceStore>,
    credit_notes: Arc<dyn CreditNoteStore>,
    /// `None`: no queue (a local stack without one): the request erases every page.
    queue: Option<Arc<dyn ErasureQueue>>,
    page_size: usize,
    /// Signs the export's cursors; only the function that exports is given one.
    cursor_key: Option<ring::hmac::Key>,
}

impl PrivacyService {
    pub fn new(
        orders: Arc<dyn OrderStore>,
        store: Arc<dyn PrivacyStore>,
        invoices: Arc<dyn InvoiceStore>,
        credit_notes: Arc<dyn CreditNoteStore>,
    ) -> Self {
        PrivacyService {
            orders,
            store,
            invoices,
            credit_notes,
            queue: None,
            page_size: DEFAULT_ERASURE_PAGE,
            cursor_key: None,
        }
    }

    /// The export signs its cursors with `secret` (`CURSOR_SECRET`); without it
    /// `export` refuses to run.
    pub fn with_cursor_secret(mut self, secret: &[u8]) -> Self {
        self.cursor_key = Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret));
        self
    }

    /// Pages after the first go to the background through `queue`.
    pub fn with_queue(mut self, queue: Arc<dyn ErasureQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    pub fn with_page_size(mut self, orders: usize) -> Self {
        self.page_size = orders.max(1);
        self
    }

    /// `POST /api/customers/{user_id}/erasure` (admins): starts erasing the
    /// customer's orders, or joins the run under way.
    pub async fn request_erasure(
        &self,
        caller: &Principal,
        user_id: &str,
        force: bool,
    ) -> Result<Requested, PrivacyError> {
        admin_only(caller)?;
        check_user(user_id)?;
        let now = OffsetDateTime::now_utc();
        if let Some(job) = self.store.erasure_job(user_id).await?
            && job.state == ErasureState::Running
        {
            return Ok(Requested {
                job: self.nudge(job, now).await?,
                started: false,
            });
        }
        if !force {
            let open = self.open_orders(user_id).await?;
            if !open.is_empty() {
                return Err(PrivacyError::OpenOrders(open));
            }
        }
        let job = ErasureJob::start(user_id, &caller.user_id, force, now);
        match self.store.start_erasure(&job).await? {
            ErasureStart::Running(running) => Ok(Requested {
                job: running,
                started: false,
            }),
            ErasureStart::Started => {
                tracing::info!(job_id = %job.job_id, force, "erasure started");
                Ok(Requested {
                    job: self.run(job).await?,
                    started: true,
                })
            }
        }
    }

    /// `GET /api/customers/{user_id}/erasure` (admins): the latest job.
    pub async fn erasure(
        &self,
        caller: &Principal,
        user_id: &str,
    ) -> Result<ErasureJob, PrivacyError> {
        admin_only(caller)?;
        check_user(user_id)?;
        self.store
            .erasure_job(user_id)
            .await?
            .ok_or(PrivacyError::NoErasure)
    }

    /// The erasure queue's message: the next page of `job_id`.
    pub async fn continue_erasure(
        &self,
        user_id: &str,
        job_id: &str,
    ) -> Result<Continued, PrivacyError> {
        let Some(job) = self.store.erasure_job(user_id).await? else {
            return Ok(Continued::Nothing);
        };
        if job.job_id != job_id || job.state != ErasureState::Running {
            return Ok(Continued::Nothing);
        }
        match self.page(&job).await? {
            None => Ok(Continued::Nothing),
            Some(after) => {
                let done = after.state == ErasureState::Done;
                if !done {
                    self.hand_on(&after).await?;
                }
                Ok(Continued::Page { done })
            }
        }
    }

    /// A job that was just started: its first page here, the rest queued (or, with
    /// no queue, here too).
    async fn run(&self, job: ErasureJob) -> Result<ErasureJob, PrivacyError> {
        let mut current = job;
        loop {
            let Some(after) = self.page(&current).await? else {
                // A twin got this page first: it carries on.
                return Ok(current);
            };
            current = after;
            if current.state == ErasureState::Done {
                return Ok(current);
            }
            if self.queue.is_some() {
                self.hand_on(&current).await?;
                return Ok(current);
            }
        }
    }

    /// A running job that was joined: if nothing happened to it for a while, its
    /// continuation was lost (a message past its retries), so this request takes
    /// the next page and queues it on again.
    async fn nudge(
        &self,
        job: ErasureJob,
        now: OffsetDateTime,
    ) -> Result<ErasureJob, PrivacyError> {
        if now - job.updated_at < STALLED_AFTER {
            return Ok(job);
        }
        tracing::warn!(job_id = %job.job_id, "erasure stalled; carried on by a new request");
        self.run(job).await
    }

    async fn hand_on(&self, job: &ErasureJob) -> Result<(), PrivacyError> {
        if let Some(queue) = &self.queue {
            queue.continue_later(&job.user_id, &job.job_id).await?;
        }
        Ok(())
    }

    /// Erases the page at the job's cursor and saves the job one page on. `None`
    /// when a twin saved that page first (its orders were erased once either way).
    async fn page(&self, job: &ErasureJob) -> Result<Option<ErasureJob>, PrivacyError> {
        let page = self
            .orders
            .list(&OrderQuery {
                user_id: Some(job.user_id.clone()),
                status: None,
                created_after: None,
                created_before: None,
                limit: self.page_size,
                after: job.cursor.clone().map(PagePosition),
            })
            .await?;
        let mut tally = PageTally::default();
        for order in page.orders {
            self.erase_one(order, job, &mut tally).await?;
        }
        let after = job.after_page(tally, page.next.map(|p| p.0), OffsetDateTime::now_utc());
        Ok(self.store.save_erasure(job, &after).await?.then_some(after))
    }

    /// One order: erased in one conditional write, planned again from the order as
    /// the store found it when it changed meanwhile (the list's copy may be stale).
    async fn erase_one(
        &self,
        mut order: Order,
        job: &ErasureJob,
        tally: &mut PageTally,
    ) -> Result<(), PrivacyError> {
        for _ in 0..ERASE_ATTEMPTS {
            if is_erased(&order) {
                tally.skipped += 1;
                return Ok(());
            }
            let open = still_open(&order);
            // An order opened after the request was checked is left for a later
            // request; a forced job takes it too.
            if open && !job.force {
                tally.skipped += 1;
                return Ok(());
            }
            let Some(erased) = erase(&order, &job.requested_by, OffsetDateTime::now_utc()) else {
                tally.skipped += 1;
                return Ok(());
            };
            match self.store.write_erasure(&erased).await? {
                ChangeOutcome::Changed(_) => {
                    tally.erased += 1;
                    if open {
                        tally.forced += 1;
                    }
                    return Ok(());
                }
                ChangeOutcome::Refused(Some(current)) if is_erased(&current) => {
                    tally.skipped += 1;
                    return Ok(());
                }
                ChangeOutcome::Refused(Some(current)) => order = *current,
                // Gone (orders are never deleted; a table restored without it).
                ChangeOutcome::Refused(None) => return Ok(()),
            }
        }
        Err(PrivacyError::Contention)
    }

    /// The customer's orders that are still open (up to [`MAX_OPEN_NAMED`]): not yet
    /// delivered or cancelled, or with a return whose goods or money are still
    /// moving. One pass over the customer's own orders (the user index), each tested
    /// with `still_open`: a return leaves its order `delivered`, so no status filter
    /// finds it, and one unfiltered pass reads the customer's orders once where a
    /// filtered query per open status read them once per status.
    async fn open_orders(&self, user_id: &str) -> Result<Vec<OpenOrder>, PrivacyError> {
        let mut open = Vec::new();
        let mut after = None;
        for _ in 0..OPEN_CHECK_PAGES {
            let page = self
                .orders
                .list(&OrderQuery {
                    user_id: Some(user_id.to_string()),
                    status: None,
                    created_after: None,
                    created_before: None,
                    limit: OPEN_CHECK_PAGE,
                    after,
                })
                .await?;
            open.extend(page.orders.iter().filter_map(OpenOrder::of));
            if open.len() >= MAX_OPEN_NAMED {
                open.truncate(MAX_OPEN_NAMED);
                break;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(open)
    }

    /// `GET /api/customers/{user_id}/export`: the customer themself or an admin;
    /// `limit` orders a page (with their invoices, credit notes and message records),
    /// newest first.
    pub async fn export(
        &self,
        caller: &Principal,
        user_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<ExportPage, PrivacyError> {
        check_user(user_id)?;
        if caller.user_id != user_id && !caller.admin {
            return Err(PrivacyError::Forbidden(
                "you may export only your own data".into(),
            ));
        }
        let Some(cursor_key) = &self.cursor_key else {
            return Err(PrivacyError::Store(StoreError::Other(
                "this function was given no CURSOR_SECRET: it does not export".into(),
            )));
        };
        // A cursor is bound to the caller and the customer it was issued for.
        let scope = format!("export|{}|{user_id}", caller.user_id);
        let after = cursor
            .map(|c| open_cursor(cursor_key, c, &scope).map_err(|_| PrivacyError::BadCursor))
            .transpose()?;
        let page = self
            .orders
            .list(&OrderQuery {
                user_id: Some(user_id.to_string()),
                status: None,
                created_after: None,
                created_before: None,
                limit,
                after,
            })
            .await?;
        let invoices = futures_util::future::try_join_all(
            page.orders.iter().map(|o| self.invoices.get(&o.id)),
        )
        .await?
        .into_iter()
        .flatten()
        .collect();
        let credit_notes = futures_util::future::try_join_all(
            page.orders.iter().map(|o| self.credit_notes.list(&o.id)),
        )
        .await?
        .into_iter()
        .flatten()
        .collect();
        let messages = futures_util::future::try_join_all(
            page.orders
                .iter()
                .map(|o| self.store.messages(&o.id, o.version)),
        )
        .await?
        .into_iter()
        .flatten()
        .collect();
        Ok(ExportPage {
            orders: page.orders,
            invoices,
            credit_notes,
            messages,
            next_cursor: page.next.map(|p| seal_cursor(cursor_key, &p, &scope)),
        })
    }
}

fn admin_only(caller: &Principal) -> Result<(), PrivacyError> {
    if caller.admin {
        Ok(())
    } else {
        Err(PrivacyError::Forbidden(
            "only an admin may erase or inspect an erasure".into(),
        ))
    }
}

fn check_user(user_id: &str) -> Result<(), PrivacyError> {
    if user_id.is_empty() || user_id.chars().count() > 255 {
        return Err(PrivacyError::InvalidUser);
    }
    Ok(())
}
