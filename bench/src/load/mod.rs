//! `make load`: the local stack under load, and under faults, with everything the
//! clients were told checked against what was stored and published.
//!
//! It starts its own emulator (scripts/emulator.py, so that it can pause it), the
//! provider stand-ins (localstripe, the Shippo stand-in) and the local stack
//! (`orders-dev`, what `make dev` runs, with its Stripe and Shippo settings) as child
//! processes on free loopback ports, seeds carts and stock, subscribes a catch-all queue
//! to the bus and a webhook receiver of its own, then runs four phases of clients taking
//! orders through their whole life (clients.rs: paid by card, refunded, shipped with a
//! label, delivered, returned), each phase followed by a wait (polling, with a deadline)
//! until the money, the documents and the pipeline have caught up, and its checks:
//!
//! 1. steady load: N clients for a fixed time;
//! 2. the emulator stopped (SIGSTOP) in the middle of the load, then resumed;
//! 3. a webhook receiver that accepts connections and never answers;
//! 4. a poison record (an unreadable order item) in the table's stream.
//!
//! It prints one report and writes it (`Settings::out`, docs/load.md in `make load`);
//! `start` answers whether every check passed. The `load` binary (src/bin/load.rs) reads
//! the settings from its command line.

pub mod checks;
pub mod clients;
pub mod ledger;
pub mod receivers;
pub mod report;
pub mod stack;

use std::collections::HashSet;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checks::{Check, Observer, Settled};
use clients::{Carts, Placed, Targets, Traffic};
use ledger::Ledger;
use receivers::{Hanging, Healthy, Subscriptions};
use report::Phase;
use stack::{Emulator, Stack, StandIn};

use crate::{Error, common};

/// How long the pipeline may take to catch up after a phase without faults.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// How long a label request's claim on the label purchase lasts before another may take
/// it over (shared/src/services/shipping.rs, `LABEL_LEASE`).
const LABEL_LEASE: Duration = Duration::from_secs(60);
/// An item keyed as an order that is not one: the poison of phase 4.
const POISON_PK: &str = "ORDER#ORDLOADPOISON0000000";

pub struct Settings {
    pub clients: usize,
    /// The steady phase's window.
    pub seconds: Duration,
    /// The window of the phase with the emulator stopped.
    pub fault_seconds: Duration,
    /// The windows of the hanging-receiver and poison phases.
    pub short_seconds: Duration,
    /// When, in the fault phase, the emulator is stopped, and for how long.
    pub stop_after: Duration,
    pub stop_for: Duration,
    /// Carts seeded: no run places more orders than this.
    pub max_orders: usize,
    /// The whole run's limit.
    pub deadline: Duration,
    pub dev_binary: PathBuf,
    pub root: PathBuf,
    pub out: Option<PathBuf>,
    pub command: String,
}

/// Starts the emulator, then runs everything else under one deadline; answers
/// whether every check passed.
pub fn start(settings: &Settings) -> Result<bool, Error> {
    let work = std::env::temp_dir().join(format!("orders-load-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    eprintln!("load: logs in {}", work.display());
    let emulator = Emulator::start(&settings.root, &work)?;
    eprintln!(
        "load: emulator at {} (log: {})",
        emulator.url,
        emulator.log.display()
    );
    let stand_ins = (
        StandIn::stripe(&settings.root, &work)?,
        StandIn::shippo(&settings.root, &work)?,
    );
    for stand_in in [&stand_ins.0, &stand_ins.1] {
        eprintln!(
            "load: stand-in at {} (log: {})",
            stand_in.url,
            stand_in.log.display()
        );
    }
    // Our own SDK clients read these; set before any other thread exists.
    for (name, value) in [
        ("AWS_ENDPOINT_URL", emulator.url.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        // SAFETY: single-threaded still: the runtime is built below.
        unsafe { std::env::set_var(name, value) };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let passed = runtime.block_on(async {
        tokio::select! {
            outcome = tokio::time::timeout(settings.deadline, run(settings, emulator, stand_ins, &work)) => {
                outcome.map_err(|_| format!("the run took longer than {} s", settings.deadline.as_secs()))?
            }
            _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        }
    })?;
    // The logs are kept for a failed run (its path was printed at the start).
    if passed {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(passed)
}

/// Everything a phase needs.
struct Run<'a> {
    settings: &'a Settings,
    stack: Stack,
    targets: Targets,
    ledger: Ledger,
    carts: Arc<Carts>,
    healthy: Healthy,
    healthy_subscription: String,
    subscriptions: Subscriptions,
    observer: Observer,
    /// Every order placed so far, across phases.
    placed: Vec<Placed>,
    /// The healthy receiver's deliveries per second in the steady phase.
    steady_webhooks_per_second: f64,
}

async fn run(
    settings: &Settings,
    emulator: Emulator,
    stand_ins: (StandIn, StandIn),
    work: &std::path::Path,
) -> Result<bool, Error> {
    let load_average = common::load_average();
    let stack = Stack::start(
        emulator,
        stand_ins,
        &settings.dev_binary,
        &settings.root,
        work,
    )
    .await?;
    eprintln!(
        "load: orders-dev at {} (log: {})",
        stack.api,
        stack.dev_log.display()
    );
    let (carts, seeds) = Carts::new(settings.clients, settings.max_orders);
    let seeding = Instant::now();
    stack.seed(&seeds).await?;
    eprintln!(
        "load: {} carts seeded in {:.1} s",
        seeds.len(),
        seeding.elapsed().as_secs_f64()
    );
    let healthy = Healthy::start().await?;
    let subscriptions = Subscriptions::new(&stack.api);
    let subscription = subscriptions
        .subscribe(&healthy.url, "load: a healthy receiver")
        .await?;
    healthy.set_secret(&subscription.secret)?;
    let healthy_subscription = subscription.id.clone();
    // A subscription gets the events that occurred from its `created_at` on, and a
    // payment's change occurred, for the product, when Stripe created its event: in whole
    // seconds, so up to a second before the change was made. The clients start after the
    // next whole second, so that no payment of theirs can look older than the
    // subscription (the webhook check names any event that does).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    tokio::time::sleep(
        Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()))
            + Duration::from_millis(50),
    )
    .await;
    let targets = Targets {
        api: stack.api.clone(),
        stripe: stack.stripe.url.clone(),
        shippo: stack.shippo.url.clone(),
    };
    let ledger = Ledger::new(&stack);
    let mut run = Run {
        settings,
        targets,
        ledger,
        stack,
        carts: Arc::new(carts),
        healthy,
        healthy_subscription,
        subscriptions,
        observer: Observer::with_webhooks_since(subscription.created_at),
        placed: Vec::new(),
        steady_webhooks_per_second: f64::NAN,
    };

    let phases = vec![
        steady(&mut run).await?,
        emulator_stopped(&mut run).await?,
        hanging_receiver(&mut run).await?,
        poison_record(&mut run).await?,
    ];
    let overall = overall(&mut run).await?;

    let (cpus, cpu_model) = common::machine();
    let context = report::Context {
        date: common::now_utc(),
        cpus,
        cpu_model,
        load_average,
    };
    let text = report::render(settings, &phases, &overall, &context);
    println!("\n{text}");
    if let Some(out) = &settings.out {
        std::fs::write(out, &text)?;
        eprintln!("load: wrote {}", out.display());
    }
    let passed = phases
        .iter()
        .flat_map(|p| &p.checks)
        .chain(&overall)
        .all(|c| c.passed);
    Ok(passed)
}

impl Run<'_> {
    /// Runs the clients for `window` while `fault` runs beside them (it gets the
    /// phase's start); answers the traffic, the emulator's timings for the window and
    /// what `fault` answered.
    async fn load<T>(
        &self,
        window: Duration,
        fault: impl AsyncFnOnce(Instant) -> Result<T, Error>,
    ) -> Result<(Traffic, serde_json::Value, T), Error> {
        self.stack.emulator.counters.reset().await?;
        let cpu_before = self.stack.cpu_seconds();
        let started = Instant::now();
        let started_at = std::time::SystemTime::now();
        let (traffic, faulted) = tokio::join!(
            clients::run(
                &self.targets,
                &self.carts,
                self.settings.clients,
                started,
                window
            ),
            fault(started)
        );
        let faulted = faulted?;
        let mut traffic = traffic;
        traffic.started_at = Some(started_at);
        // Share of one CPU each process used over the window.
        let seconds = started.elapsed().as_secs_f64();
        traffic.cpu = cpu_before
            .iter()
            .zip(self.stack.cpu_seconds())
            .map(|(before, after)| Some((after? - (*before)?) / seconds))
            .collect();
        let timings = self.stack.emulator.counters.timings().await?;
        eprintln!(
            "load:   {} requests, {} orders in {:.1} s",
            traffic.samples.len(),
            traffic.placed.len(),
            traffic.elapsed.as_secs_f64()
        );
        Ok((traffic, timings, faulted))
    }

    /// Waits until the pipeline has caught up with every order placed so far: on time
    /// within [`SETTLE_LIMIT`], late up to what the queues' settings allow.
    async fn settle(&mut self, traffic: &Traffic) -> Result<Settled, Error> {
        self.placed.extend(traffic.placed.iter().cloned());
        let limit = late_limit(&self.settings.root)?;
        // The money and the documents first: a cancellation's refund is more changes
        // for the pipeline to carry.
        let books = self.ledger.settle(&traffic.placed, limit).await?;
        eprintln!(
            "load:   books {} after {:.1} s",
            if books.waiting_for.is_empty() {
                "settled"
            } else {
                "NOT settled"
            },
            books.waited.as_secs_f64()
        );
        let mut settled = self
            .observer
            .settle(
                &self.stack,
                &self.placed,
                &self.healthy,
                SETTLE_LIMIT,
                limit,
            )
            .await?;
        settled.books_waited = books.waited;
        settled.books_waiting_for = books.waiting_for;
        eprintln!(
            "load:   pipeline {} after {:.1} s",
            if settled.done {
                "caught up"
            } else {
                "NOT caught up"
            },
            settled.waited.as_secs_f64()
        );
        Ok(settled)
    }

    /// The checks every phase makes of its orders. `exactly`: no duplicate allowed.
    async fn order_checks(
        &mut self,
        traffic: &Traffic,
        settled: &Settled,
        exactly: bool,
    ) -> Result<Vec<Check>, Error> {
        let deliveries = self.healthy.deliveries();
        let restocks = ledger::restocks(&self.stack).await?;
        let placed = &traffic.placed;
        let stopped: Vec<String> = placed
            .iter()
            .filter_map(|o| {
                o.stopped
                    .as_ref()
                    .map(|why| format!("{} ({:?}): {why}", o.order_id, o.path))
            })
            .collect();
        Ok(vec![
            Check::new(
                "every order's flow ran to its end (paid, delivered, refunded, returned as its path says)",
                stopped.is_empty(),
                format!(
                    "{} orders, {} stopped short{}",
                    placed.len(),
                    stopped.len(),
                    checks::first_few(&stopped)
                ),
            ),
            Check::new(
                "the money and the documents caught up (refunds, credit notes, invoices)",
                settled.books_waiting_for.is_empty(),
                format!(
                    "in {:.1} s{}",
                    settled.books_waited.as_secs_f64(),
                    checks::first_few(&settled.books_waiting_for)
                ),
            ),
            Check::new(
                "the pipeline caught up (nothing lost; late is counted, not failed)",
                settled.done,
                if settled.done {
                    format!(
                        "in {:.1} s{}",
                        settled.waited.as_secs_f64(),
                        lateness(settled)
                    )
                } else {
                    format!(
                        "lost: still missing after {:.1} s, longer than the queues' settings let                          a late delivery take: {}{}",
                        settled.waited.as_secs_f64(),
                        settled.waiting_for.join("; "),
                        lateness(settled)
                    )
                },
            ),
            checks::stored_once(traffic, &settled.stored),
            checks::whole(traffic, &settled.stored),
            checks::events_per_change(traffic, &settled.stored, &self.observer, exactly),
            checks::webhooks_once(traffic, &self.observer, &deliveries, exactly),
            self.ledger.invoices(placed),
            self.ledger.refunds(placed),
            self.ledger.returns(placed, &restocks),
            self.ledger.documents_mailed(placed, exactly),
        ])
    }

    /// The publisher gave up on no record: its on-failure queue is empty.
    async fn publisher_gave_up_on_nothing(&self) -> Result<Check, Error> {
        let failed = checks::failure_keys(&self.stack.drain(&self.stack.publisher_failures).await?);
        Ok(Check::new(
            "the publisher gave up on no record (PublisherFailures is empty)",
            failed.is_empty(),
            format!(
                "{} record(s) there{}",
                failed.len(),
                checks::first_few(&failed)
            ),
        ))
    }

    /// Deliveries to the healthy receiver of `traffic`'s events that came from a second
    /// or later receive of their message (the delivery log's `attempt`).
    async fn redelivered(&self, traffic: &Traffic) -> Result<usize, Error> {
        let orders: HashSet<&str> = traffic.placed.iter().map(|p| p.order_id.as_str()).collect();
        let attempts = self
            .subscriptions
            .attempts(&self.healthy_subscription)
            .await?;
        Ok(attempts
            .iter()
            .filter(|a| a["outcome"] == "delivered" && a["attempt"].as_u64().unwrap_or(1) > 1)
            .filter(|a| {
                a["event_id"]
                    .as_str()
                    .and_then(|id| id.split_once(':'))
                    .is_some_and(|(order, _)| orders.contains(order))
            })
            .count())
    }

    /// Deliveries to the healthy receiver during `traffic`'s window, per second.
    fn webhooks_per_second(&self, traffic: &Traffic) -> f64 {
        let Some(start) = traffic.started_at else {
            return f64::NAN;
        };
        let end = start + traffic.elapsed;
        let delivered = self
            .healthy
            .deliveries()
            .iter()
            .filter(|d| d.arrived >= start && d.arrived <= end)
            .count();
        delivered as f64 / traffic.elapsed.as_secs_f64()
    }

    /// Changes made during `traffic`'s window (any phase's orders) that the bus
    /// carried, per second: the events through the pipeline.
    fn events_per_second(&self, traffic: &Traffic) -> f64 {
        let Some(start) = traffic.started_at else {
            return f64::NAN;
        };
        let changes = self
            .observer
            .changes_between(start, start + traffic.elapsed);
        changes as f64 / traffic.elapsed.as_secs_f64()
    }

    fn webhook_lag(&self, traffic: &Traffic) -> Vec<f64> {
        let ids: HashSet<&str> = traffic.placed.iter().map(|p| p.order_id.as_str()).collect();
        report::webhook_lag_ms(&self.healthy.deliveries(), &ids)
    }
}

/// What arrived late: after the on-time limit, within the late one.
fn lateness(settled: &Settled) -> String {
    if settled.late.is_empty() {
        return "; nothing late".to_string();
    }
    format!(
        "; {} late (missing after the {} s an on-time change takes, then arrived){}",
        settled.late.len(),
        settled.on_time.as_secs(),
        checks::first_few(&settled.late)
    )
}

/// How long a late change may take to settle, by the queues' settings: the on-time
/// limit, plus a message hidden by a receive whose answer was lost (the longest
/// VisibilityTimeout), plus a webhook message that found its delivery claimed by an
/// attempt that died (the claim's lease).
fn late_limit(root: &std::path::Path) -> Result<Duration, Error> {
    let lease = orders::services::deliveries::DEFAULT_BATCH_DEADLINE
        + orders::services::deliveries::CLAIM_MARGIN;
    Ok(SETTLE_LIMIT + visibility_timeout(root)? + lease)
}

/// Phase 1, steady load: nothing goes wrong, so everything must be exactly once.
async fn steady(run: &mut Run<'_>) -> Result<Phase, Error> {
    eprintln!(
        "load: phase 1, steady load ({} clients)",
        run.settings.clients
    );
    let (traffic, emulator, ()) = run.load(run.settings.seconds, async |_| Ok(())).await?;
    let settled = run.settle(&traffic).await?;
    let mut checks = checks::no_5xx(&traffic);
    checks.extend(run.order_checks(&traffic, &settled, true).await?);
    checks.push(run.publisher_gave_up_on_nothing().await?);
    let (wait, service) = report::emulator_wait_and_service(&emulator);
    let cpu = traffic.cpu.first().copied().flatten();
    let mut reading = format!(
        "Where the time goes: the emulator used {} of one CPU over the window, and its DynamoDB \
         requests waited p50 {wait:.1} ms for its lock against p50 {service:.1} ms of moto's work \
         (table below).",
        cpu.map_or("?".to_string(), |c| format!("{:.0} %", c * 100.0)),
    );
    if wait > 2.0 * service {
        reading.push_str(
            " The API's latencies are mostly that queue: these figures measure moto (one Python \
             process, one interpreter lock) more than the stack.",
        );
    }
    let mut notes = vec![reading];
    notes.push(the_limit(&traffic, &emulator, run.settings.clients));
    run.steady_webhooks_per_second = run.webhooks_per_second(&traffic);
    Ok(Phase {
        title: "steady load",
        about: format!(
            "{} clients for {} s. Nothing is disturbed, so every change must be published, \
             and delivered to the webhook receiver, exactly once.",
            run.settings.clients,
            run.settings.seconds.as_secs()
        ),
        webhook_lag_ms: run.webhook_lag(&traffic),
        webhooks_per_second: run.webhooks_per_second(&traffic),
        events_per_second: run.events_per_second(&traffic),
        settled_after: settled.books_waited + settled.waited,
        traffic,
        emulator,
        notes,
        checks,
    })
}

/// Where the local stack's limit is and what sets it, from the steady phase: the
/// emulator serves DynamoDB requests one at a time (one lock, one Python process), so
/// its ceiling is 1 / (moto's mean work per request) requests a second; divided by the
/// DynamoDB requests an order brought (API, pipeline and driver alike) it is the orders
/// a second the stack can take. Below that ceiling the clients set the pace: each takes
/// its orders one after another, and most of an order's time is spent waiting for what
/// is asynchronous (polled, not slept on), so that is said with the figures.
fn the_limit(traffic: &Traffic, emulator: &serde_json::Value, clients: usize) -> String {
    let (requests, mean_service_ms) = report::emulator_requests_and_mean_service(emulator);
    let window = traffic.elapsed.as_secs_f64().max(f64::EPSILON);
    let orders = traffic.placed.len().max(1) as f64;
    let per_order = requests as f64 / orders;
    let ceiling = 1000.0 / mean_service_ms.max(f64::EPSILON);
    // The share of the window moto held its lock.
    let busy = requests as f64 * mean_service_ms / 1000.0 / window;
    let reached = orders / window;
    let cpu = |i: usize| {
        traffic
            .cpu
            .get(i)
            .copied()
            .flatten()
            .map_or("?".to_string(), |c| format!("{:.0} %", c * 100.0))
    };
    let shares: Vec<String> = stack::PROCESSES
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} {}", cpu(i)))
        .collect();
    let mut text = format!(
        "Where the limit is: the emulator served {requests} DynamoDB requests in {window:.1} s \
         ({:.0}/s), {per_order:.1} per order placed (API, pipeline and driver, the clients' \
         polls included), at a mean {mean_service_ms:.1} ms of moto's work each under its one \
         lock: the lock was held {:.0} % of the window, and it cannot serve more than \
         {ceiling:.0} requests/s, {:.1} orders/s at this mix, against {reached:.1} orders/s \
         reached{}. CPU over the window, as a share of one CPU: {}. ",
        requests as f64 / window,
        busy * 100.0,
        ceiling / per_order.max(f64::EPSILON),
        if traffic.capped {
            " (some clients ran out of carts)"
        } else {
            ""
        },
        shares.join(", "),
    );
    if busy >= 0.8 {
        text.push_str(
            "What sets it: the emulator, one Python process that serialises DynamoDB requests \
             (it must: moto's conditional writes are not atomic otherwise). More clients only \
             lengthen the queue for its lock; fewer requests per order raise the ceiling in \
             proportion. ",
        );
    } else {
        // Client time not spent waiting for an answer is spent between polls.
        let answered: f64 = traffic
            .samples
            .iter()
            .map(|s| s.latency.as_secs_f64())
            .sum();
        let client_time = window * clients as f64;
        let between_polls = (1.0 - answered / client_time).clamp(0.0, 1.0);
        let _ = write!(
            text,
            "What sets it here: the clients, not the emulator. Each takes its orders one after \
             another, {:.1} s each, and spent {:.0} % of its time between requests, waiting \
             (it polls every {:.1} s) for what is asynchronous: localstripe posts a payment's \
             event 1 s after the charge, and the reservation, the carrier's report reaching the \
             order, invoices and credit notes go through the pipeline. More clients would raise \
             the rate until the emulator's lock is busy all the time. ",
            client_time / orders,
            between_polls * 100.0,
            clients::POLL_EVERY.as_secs_f64()
        );
    }
    text.push_str(
        "On DynamoDB there is no such lock: requests to different items run in parallel, each \
         in single-digit milliseconds, so the same mix is bounded by the table's write quota \
         (40,000 write units/s on demand by default: about 650 orders/s at docs/cost.md's 62 \
         units for an order paid by card, mailed, invoiced and delivered; this mix's refunds, \
         labels and returns add more) and by the hottest item, a product's stock (1,000 write \
         units/s: about 400 orders/s of one product), not by a queue. docs/scale.md carries \
         the arithmetic for 1,000 orders/s.",
    );
    text
}

/// Phase 2: the emulator stopped in the middle of the load, then resumed.
async fn emulator_stopped(run: &mut Run<'_>) -> Result<Phase, Error> {
    let (after, stop_for) = (run.settings.stop_after, run.settings.stop_for);
    eprintln!(
        "load: phase 2, emulator stopped {} s into the load for {} s",
        after.as_secs(),
        stop_for.as_secs()
    );
    let emulator = &run.stack.emulator;
    let (traffic, timings, (paused, resumed)) = run
        .load(run.settings.fault_seconds, async |started: Instant| {
            tokio::time::sleep(after).await;
            let paused = started.elapsed();
            emulator.pause()?;
            // Resume however this ends, so that no check ever talks to a stopped emulator.
            let _resume = Resume(emulator);
            tokio::time::sleep(stop_for).await;
            emulator.resume()?;
            Ok((paused, started.elapsed()))
        })
        .await?;
    // While the emulator is away the pipeline's requests time out and queue up in its
    // socket: waiting out SQS's visibility timeout for a receive whose answer was lost
    // is part of the recovery (reported late, not lost).
    let settled = run.settle(&traffic).await?;

    let timeout = run.stack.operation_timeout;
    let margin = Duration::from_secs(2);
    // Once resumed, the emulator first serves what queued up while it was stopped; a
    // request may still time out then, but not for long.
    let recovery = 2 * timeout;
    let errors: Vec<&clients::Sample> = traffic
        .samples
        .iter()
        .filter(|s| s.status >= 500 || s.status == 0)
        .collect();
    let bad: Vec<String> = errors
        .iter()
        .filter(|s| {
            let codes = ["store_unavailable", "cart_service_unavailable"];
            let bound = store_calls_on_failure(s.endpoint) * timeout;
            !(s.status == 503
                && s.problem_json
                && s.retry_after.is_some()
                && s.code.as_deref().is_some_and(|c| codes.contains(&c))
                && s.sent + bound >= paused
                && s.sent <= resumed + recovery
                && s.latency <= bound + margin)
        })
        .map(|s| {
            format!(
                "{} {} {} at {:.1} s after {:.1} s (Retry-After {:?})",
                s.endpoint,
                s.status,
                s.code.as_deref().unwrap_or("-"),
                s.sent.as_secs_f64(),
                s.latency.as_secs_f64(),
                s.retry_after
            )
        })
        .collect();
    let slowest = errors.iter().map(|s| s.latency).max().unwrap_or_default();
    let retried: Vec<&Placed> = traffic
        .placed
        .iter()
        .filter(|p| p.create_attempts > 1)
        .collect();
    let replayed = retried.iter().filter(|p| p.replayed).count();
    let survived = run.stack.dev_exited();
    let second_receives = run.redelivered(&traffic).await?;
    // A label request answered 503 whose claim on the label purchase was written once the
    // emulator resumed: sent again, it finds that claim (409 `label_in_progress`) until
    // its lease runs out.
    let label_held = |s: &clients::Sample| {
        s.status == 409
            && s.code.as_deref() == Some("label_in_progress")
            && s.sent >= paused
            && s.sent <= resumed + LABEL_LEASE + margin
    };
    let held: Vec<&clients::Sample> = traffic.samples.iter().filter(|s| label_held(s)).collect();

    let mut checks = vec![
        Check::new(
            "while the emulator was stopped: prompt 503s, each problem+json with Retry-After",
            !errors.is_empty() && bad.is_empty(),
            format!(
                "{} 5xx answers, {} of them not a 503 problem+json with Retry-After sent between \
                 the stop (less one operation timeout) and {} s after the resume and answered \
                 within the SDK's {} s operation timeout + {} s (a label request within two \
                 timeouts: once its store call has timed out it releases its claim on the \
                 label purchase, a second call to the stopped store); slowest {:.1} s; \
                 the last one sent {}{}",
                errors.len(),
                bad.len(),
                recovery.as_secs(),
                timeout.as_secs(),
                margin.as_secs(),
                slowest.as_secs_f64(),
                match errors.iter().map(|s| s.sent).max() {
                    Some(last) if last >= resumed => {
                        format!("{:.1} s after the resume", (last - resumed).as_secs_f64())
                    }
                    Some(last) =>
                        format!("{:.1} s before the resume", (resumed - last).as_secs_f64()),
                    None => "-".to_string(),
                },
                checks::first_few(&bad)
            ),
        ),
        checks::expected_answers(&traffic, |s| s.status == 503 || label_held(s)),
        Check::new(
            "every create retried after a 503 or a 409 concurrent_change (same Idempotency-Key) resolved to exactly one order",
            traffic.not_created.is_empty(),
            format!(
                "{} creates retried, {replayed} of them answered as a replay of a create that had gone through; {} never resolved",
                retried.len(),
                traffic.not_created.len()
            ),
        ),
        Check::new(
            "orders-dev (API and pipeline) kept running",
            survived.is_none(),
            match survived {
                None => "still running".to_string(),
                Some(status) => format!("exited ({status}); see {}", run.stack.dev_log.display()),
            },
        ),
    ];
    checks.extend(run.order_checks(&traffic, &settled, false).await?);
    checks.push(run.publisher_gave_up_on_nothing().await?);
    Ok(Phase {
        title: "emulator stopped",
        about: format!(
            "{} clients for {} s; {} s in, the emulator is stopped (SIGSTOP) for {} s — longer \
             than the SDK's {} s operation timeout — then resumed (SIGCONT). While it is away the \
             API must answer 503 with `Retry-After`, and afterwards nothing may be lost. A \
             request that timed out is still in the emulator's socket and is served when it \
             resumes, so a create retried with its key may find itself already done (answered \
             as a replay), an event may reach the bus twice, and a webhook whose delivery could \
             not be recorded while the table was away is sent again: at-least-once, which the \
             checks allow here and count (consumers drop duplicates by `event_id` / \
             `webhook-id`).",
            run.settings.clients,
            run.settings.fault_seconds.as_secs(),
            after.as_secs(),
            stop_for.as_secs(),
            timeout.as_secs()
        ),
        notes: vec![
            format!(
                "Stopped at {:.1} s, resumed at {:.1} s; {} answers were 5xx, {} creates were \
                 retried; {} answers to label requests sent again after a 503 were 409 \
                 `label_in_progress` (the first attempt's claim on the label purchase, written \
                 when the emulator resumed, lasts its {} s lease; the client sends the request \
                 again every few seconds, same key, until it is answered){}.",
                paused.as_secs_f64(),
                resumed.as_secs_f64(),
                errors.len(),
                retried.len(),
                held.len(),
                LABEL_LEASE.as_secs(),
                if held.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", the last {:.1} s after the resume",
                        held.iter()
                            .map(|s| s.sent.saturating_sub(resumed))
                            .max()
                            .unwrap_or_default()
                            .as_secs_f64()
                    )
                }
            ),
            format!(
                "The pipeline caught up {:.1} s after the window; {second_receives} of this phase's \
                 deliveries to the healthy receiver came from a second or later receive of their \
                 message. (A webhook claim written while the emulator was stopped, whose answer \
                 was lost, holds its pair until its lease ends, {} s: its message comes back \
                 then. A ReceiveMessage given up on is served when the emulator resumes, to \
                 nobody: the messages it took stay hidden for their queue's VisibilityTimeout, \
                 {} s for the webhook queue and up to {} s for the others here — SQS's at-least-once, as for Lambda; the local poller waits {} s for a \
                 receive, longer than the stop, so that it rarely happens. Either is late, not \
                 lost.)",
                (settled.books_waited + settled.waited).as_secs_f64(),
                (orders::services::deliveries::DEFAULT_BATCH_DEADLINE
                    + orders::services::deliveries::CLAIM_MARGIN)
                    .as_secs(),
                queue_visibility_timeout(&run.settings.root, "WebhookQueue")?.as_secs(),
                visibility_timeout(&run.settings.root)?.as_secs(),
                orders_dev::pipeline::RECEIVE_TIMEOUT.as_secs(),
            ),
        ],
        webhook_lag_ms: run.webhook_lag(&traffic),
        webhooks_per_second: run.webhooks_per_second(&traffic),
        events_per_second: run.events_per_second(&traffic),
        settled_after: settled.books_waited + settled.waited,
        traffic,
        emulator: timings,
        checks,
    })
}

/// The store calls that may each wait out the SDK's operation timeout before a request
/// to `endpoint` is answered 503 when the store stops answering: one, but two for the
/// label requests, which release their claim on the label purchase after the failed
/// call (shared/src/services/shipping.rs: `ShippingService::create`, `buy_once`).
fn store_calls_on_failure(endpoint: &str) -> u32 {
    match endpoint {
        "ship with label" | "approve return" => 2,
        _ => 1,
    }
}

/// Resumes the emulator when dropped.
struct Resume<'a>(&'a Emulator);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        let _ = self.0.resume();
    }
}

/// The longest VisibilityTimeout of the template's queues.
fn visibility_timeout(root: &std::path::Path) -> Result<Duration, Error> {
    let template = orders_dev::template::Template::load(root.join("template.yaml"))?;
    let longest = template
        .queues()
        .iter()
        .filter_map(|q| q.visibility_timeout)
        .max()
        .unwrap_or(30);
    Ok(Duration::from_secs(u64::from(longest)))
}

/// The VisibilityTimeout of the template's queue `logical_id` (SQS's default, 30 s,
/// when it sets none).
fn queue_visibility_timeout(root: &std::path::Path, logical_id: &str) -> Result<Duration, Error> {
    let template = orders_dev::template::Template::load(root.join("template.yaml"))?;
    let queue = template
        .queues()
        .into_iter()
        .find(|q| q.logical_id == logical_id)
        .ok_or_else(|| format!("template.yaml has no queue {logical_id}"))?;
    Ok(Duration::from_secs(u64::from(
        queue.visibility_timeout.unwrap_or(30),
    )))
}

/// Phase 3: a second webhook subscription whose receiver never answers.
async fn hanging_receiver(run: &mut Run<'_>) -> Result<Phase, Error> {
    eprintln!("load: phase 3, a webhook receiver that hangs");
    let hanging = Hanging::start().await?;
    let subscription = run
        .subscriptions
        .subscribe(&hanging.url, "load: a receiver that never answers")
        .await?;
    let (traffic, emulator, ()) = run
        .load(run.settings.short_seconds, async |_| Ok(()))
        .await?;
    // Every delivery begun during the window times out and is then logged: wait until
    // the log holds one attempt per connection accepted by the end of the window. (The
    // log is read before the subscription is deleted: a deleted webhook has none.)
    let begun = hanging.connections();
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut attempts = run.subscriptions.attempts(&subscription.id).await?;
    while (attempts.is_empty() || attempts.len() < begun) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        attempts = run.subscriptions.attempts(&subscription.id).await?;
    }
    run.subscriptions.unsubscribe(&subscription.id).await?;
    let settled = run.settle(&traffic).await?;
    let connections = hanging.connections();
    drop(hanging);

    let timeout = orders::adapters::http::webhook_sender::TIMEOUT;
    let margin = Duration::from_millis(1500);
    let durations: Vec<u64> = attempts
        .iter()
        .filter_map(|a| a["duration_ms"].as_u64())
        .collect();
    let wrong: Vec<String> = attempts
        .iter()
        .filter(|a| {
            let ms = a["duration_ms"].as_u64().unwrap_or(0);
            !(a["outcome"] == "failed"
                && a["error"].as_str().is_some_and(|e| e.contains("timed out"))
                && ms + 50 >= timeout.as_millis() as u64
                && ms <= (timeout + margin).as_millis() as u64)
        })
        .map(|a| a.to_string())
        .collect();
    let lag = report::webhook_lag_ms(&run.healthy.deliveries(), &{
        traffic.placed.iter().map(|p| p.order_id.as_str()).collect()
    });
    let mut checks = checks::no_5xx(&traffic);
    checks.push(Check::new(
        "every delivery to the hanging receiver timed out after the sender's timeout and is logged as failed",
        !attempts.is_empty() && attempts.len() >= begun && wrong.is_empty(),
        format!(
            "{} deliveries begun in the window, {} attempts logged at GET /api/webhooks/{{id}}/deliveries, durations {}–{} ms (timeout {} ms), {} not as expected{}",
            begun,
            attempts.len(),
            durations.iter().min().copied().unwrap_or(0),
            durations.iter().max().copied().unwrap_or(0),
            timeout.as_millis(),
            wrong.len(),
            checks::first_few(&wrong)
        ),
    ));
    checks.extend(run.order_checks(&traffic, &settled, true).await?);
    checks.push(run.publisher_gave_up_on_nothing().await?);
    Ok(Phase {
        title: "hanging webhook receiver",
        about: format!(
            "{} clients for {} s, with a second subscription (every event) whose receiver accepts \
             the connection and never answers; it is deleted once the deliveries begun during the \
             window are logged. Deliveries to it must fail after the sender's {} s timeout and be \
             logged as failed attempts, while the healthy receiver still gets every event once.",
            run.settings.clients,
            run.settings.short_seconds.as_secs(),
            timeout.as_secs()
        ),
        notes: vec![format!(
            "The hanging receiver accepted {connections} connections in all. During the window the \
             healthy receiver got {:.1} deliveries/s (steady phase: {:.1}/s): the webhook consumer \
             answers a batch once every receiver has, and the local stack's poller (like one Lambda \
             poller) takes one batch at a time, so a receiver that hangs holds every subscription to \
             one batch per {} s.",
            run.webhooks_per_second(&traffic),
            run.steady_webhooks_per_second,
            timeout.as_secs()
        )],
        webhook_lag_ms: lag,
        webhooks_per_second: run.webhooks_per_second(&traffic),
        events_per_second: run.events_per_second(&traffic),
        settled_after: settled.books_waited + settled.waited,
        traffic,
        emulator,
        checks,
    })
}

/// Phase 4: an item keyed as an order that the publisher cannot read, written
/// straight into the table before the load.
async fn poison_record(run: &mut Run<'_>) -> Result<Phase, Error> {
    use aws_sdk_dynamodb::types::AttributeValue;
    eprintln!("load: phase 4, a poison record in the stream");
    run.stack
        .dynamodb
        .put_item()
        .table_name(stack::TABLE)
        .item("PK", AttributeValue::S(POISON_PK.into()))
        .item("SK", AttributeValue::S("ORDER".into()))
        .item(
            "note",
            AttributeValue::S("not an order: written by make load".into()),
        )
        .send()
        .await
        .map_err(|e| orders::adapters::aws::describe(&e))?;
    let (traffic, emulator, ()) = run
        .load(run.settings.short_seconds, async |_| Ok(()))
        .await?;
    let settled = run.settle(&traffic).await?;
    // The poison reaches the on-failure queue after its last attempt; poll for it.
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut failed = Vec::new();
    while failed.is_empty() && Instant::now() < deadline {
        failed = checks::failure_keys(&run.stack.drain(&run.stack.publisher_failures).await?);
        if failed.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // Anything else given up on would have arrived with it.
    failed.extend(checks::failure_keys(
        &run.stack.drain(&run.stack.publisher_failures).await?,
    ));
    let mut checks = checks::no_5xx(&traffic);
    checks.push(Check::new(
        "the poison record, and only it, is in the publisher's on-failure queue",
        failed == [POISON_PK],
        format!("PublisherFailures holds {failed:?}"),
    ));
    checks.extend(run.order_checks(&traffic, &settled, true).await?);
    Ok(Phase {
        title: "poison record",
        about: format!(
            "An item keyed as an order (`{POISON_PK}`, `SK` = `ORDER`) but holding none of an \
             order's attributes is written straight into the table, then {} clients run for {} s. \
             The publisher cannot read it: the stream poller retries it, then sends its \
             coordinates to the on-failure queue (template.yaml's PublisherFailures), and every \
             change behind it must still be published exactly once.",
            run.settings.clients,
            run.settings.short_seconds.as_secs()
        ),
        notes: Vec::new(),
        webhook_lag_ms: run.webhook_lag(&traffic),
        webhooks_per_second: run.webhooks_per_second(&traffic),
        events_per_second: run.events_per_second(&traffic),
        settled_after: settled.books_waited + settled.waited,
        traffic,
        emulator,
        checks,
    })
}

/// Checks over the whole run, once every phase has settled.
async fn overall(run: &mut Run<'_>) -> Result<Vec<Check>, Error> {
    let limit = late_limit(&run.settings.root)?;
    let settled = run
        .observer
        .settle(&run.stack, &run.placed, &run.healthy, SETTLE_LIMIT, limit)
        .await?;
    let placed: Vec<&Placed> = run.placed.iter().collect();
    // Each restock record is one return's: one load-p1 back (the clients' only return).
    let restocks = ledger::restocks(&run.stack).await?;
    let received: HashSet<&str> = placed
        .iter()
        .filter(|o| o.returned)
        .filter_map(|o| o.return_id.as_deref())
        .collect();
    let strays: Vec<String> = restocks
        .keys()
        .filter(|id| !received.contains(id.as_str()))
        .cloned()
        .collect();
    let returned = std::collections::BTreeMap::from([(
        clients::RETURNED_PRODUCT,
        restocks.values().sum::<usize>() as u64,
    )]);
    let mut checks = vec![
        checks::no_strays(&placed, &settled.stored, Some(POISON_PK)),
        Check::new(
            "every restock is a received return's, once",
            strays.is_empty()
                && restocks.values().all(|n| *n == 1)
                && restocks.len() >= received.len(),
            format!(
                "{} returns received, {} restock records{}",
                received.len(),
                restocks.len(),
                checks::first_few(&strays)
            ),
        ),
        checks::stock_conserved(&run.stack, &settled.stored, &returned).await?,
        Check::new(
            "the bus carried nothing but order events, each with id <order_id>:<sequence>",
            run.observer.strays.is_empty() && run.observer.misnamed.is_empty(),
            format!(
                "{} other message(s), {} misnamed event(s){}",
                run.observer.strays.len(),
                run.observer.misnamed.len(),
                checks::first_few(&run.observer.misnamed)
            ),
        ),
    ];
    for (name, url) in &run.stack.dead_letters {
        let depth = run.stack.queue_depth(url).await?;
        checks.push(Check::new(
            format!("nothing was dead-lettered in {name}"),
            depth == 0,
            format!("{depth} message(s)"),
        ));
    }
    let exited = run.stack.dev_exited();
    checks.push(Check::new(
        "orders-dev ran to the end",
        exited.is_none(),
        match exited {
            None => "still running".to_string(),
            Some(status) => format!("exited ({status})"),
        },
    ));
    Ok(checks)
}
