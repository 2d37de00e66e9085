//! The system under load: our own emulator (scripts/emulator.py, so that we can pause
//! it), the provider stand-ins `make dev` runs (localstripe for Stripe, the Shippo
//! stand-in) and the local stack (`orders-dev`, the process `make dev` runs, with
//! `make dev`'s Stripe and Shippo settings) as child processes, plus what the run adds
//! to them: carts, stock, the stand-ins' webhooks pointed at orders-dev, a catch-all
//! queue on the bus, and SDK clients for the checks.
//!
//! Every child dies with this process: their handles kill them when dropped (end of
//! the run, an error, a panic, Ctrl-C), and the kernel kills them if this process is
//! killed outright (PR_SET_PDEATHSIG), even while the emulator is stopped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orders::adapters::dynamo::inventory::DynamoInventory;
use orders_dev::provision::SeedLine;
use serde_json::{Value, json};

use crate::Error;
use crate::emulator::Counters;

/// What every cart holds: two products, 75.00 in all, as the demo cart.
pub const CART_LINES: &[SeedLine<'static>] = &[
    ("load-p1", "USB Cable", 2, "10.00"),
    ("load-p2", "Keyboard", 1, "55.00"),
];
/// Enough that no order is ever backordered.
pub const INITIAL_STOCK: u64 = 10_000_000;
/// What the local stack is told to call its tables and bus (it creates them).
pub const TABLE: &str = "orders";
pub const CARTS_TABLE: &str = "carts";
pub const BUS: &str = "orders";
/// Our integrator's queue: every event on the bus lands here too.
const CATCH_ALL_QUEUE: &str = "LoadEveryEvent";
/// The HS256 secret the stack verifies tokens with: the test harness's, which its
/// `token()` signs with.
pub const JWT_SECRET: &str = orders_tests::SECRET;
/// `make dev`'s Shippo settings (scripts/dev.sh): any `shippo_test_` token, the token
/// Shippo's webhooks carry in their URL, and the warehouse parcels leave from.
pub const SHIPPO_API_TOKEN: &str = "shippo_test_orders_local_dev";
pub const SHIPPO_WEBHOOK_TOKEN: &str = "orders-local-shippo-webhook";
const SHIPPO_ADDRESS_FROM: &str = r#"{"name": "Orders Warehouse", "street1": "215 Clayton St.", "city": "San Francisco", "state": "CA", "zip": "94117", "country": "US"}"#;

/// A child process that is killed (and reaped) when dropped.
pub struct ChildProcess {
    child: Child,
    name: &'static str,
}

impl ChildProcess {
    /// Starts `command` so that it dies with this process, whatever ends it.
    fn spawn(name: &'static str, mut command: Command) -> Result<ChildProcess, Error> {
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(ChildProcess { child, name })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// CPU time it has used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(&format!("/proc/{}/stat", self.pid()))
    }

    /// `None` while it runs; its exit status once it has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn signal(&self, signal: i32) -> Result<(), Error> {
        // SAFETY: kill(2) on our own child's pid.
        if unsafe { libc::kill(self.pid(), signal) } != 0 {
            return Err(format!(
                "cannot signal {} ({}): {}",
                self.name,
                self.pid(),
                std::io::Error::last_os_error()
            )
            .into());
        }
        Ok(())
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// scripts/emulator.py on a free loopback port, started before anything else.
pub struct Emulator {
    process: ChildProcess,
    pub url: String,
    pub log: PathBuf,
    /// Its DynamoDB requests, counted and timed.
    pub counters: Counters,
}

impl Emulator {
    /// Starts it as scripts/with-emulator.sh does: port 0, the URL it bound written to
    /// a ready file, and `--wait` to know when it answers.
    pub fn start(root: &Path, work: &Path) -> Result<Emulator, Error> {
        let python = root.join(".venv/bin/python");
        let script = root.join("scripts/emulator.py");
        let ready = work.join("emulator.url");
        let log = work.join("emulator.log");
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", "0", "--exit-with-parent"])
            .arg("--ready-file")
            .arg(&ready)
            .arg("--log-file")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.join("emulator.stderr"))?);
        let process = ChildProcess::spawn("the emulator", command)?;
        let waited = Command::new(&python)
            .arg(&script)
            .arg("--wait")
            .arg("--ready-file")
            .arg(&ready)
            .args(["--pid", &process.pid().to_string(), "--timeout", "30"])
            .stderr(Stdio::inherit())
            .output()?;
        if !waited.status.success() {
            return Err(format!(
                "the emulator did not start (see {})",
                work.join("emulator.stderr").display()
            )
            .into());
        }
        let url = String::from_utf8(waited.stdout)?.trim().to_string();
        Ok(Emulator {
            process,
            counters: Counters::new(&url)?,
            url,
            log,
        })
    }

    /// SIGSTOP: it keeps its sockets (connections queue in the kernel) but answers
    /// nothing, as a DynamoDB that stopped answering would.
    pub fn pause(&self) -> Result<(), Error> {
        self.process.signal(libc::SIGSTOP)
    }

    pub fn resume(&self) -> Result<(), Error> {
        self.process.signal(libc::SIGCONT)
    }

    pub fn cpu_seconds(&self) -> Option<f64> {
        self.process.cpu_seconds()
    }
}

/// A provider stand-in of `make dev` (scripts/stripe_standin.py, scripts/shippo_standin.py),
/// started as scripts/with-emulator.sh starts them: port 0, the URL it bound written to
/// a ready file, and `--wait` to know when it answers.
pub struct StandIn {
    process: ChildProcess,
    pub url: String,
    pub log: PathBuf,
}

impl StandIn {
    /// localstripe, which orders-dev's payments talk to.
    pub fn stripe(root: &Path, work: &Path) -> Result<StandIn, Error> {
        StandIn::start("localstripe", "stripe_standin.py", root, work)
    }

    /// The Shippo stand-in: labels, tracking, and the carrier's reports (its control
    /// routes).
    pub fn shippo(root: &Path, work: &Path) -> Result<StandIn, Error> {
        StandIn::start("the Shippo stand-in", "shippo_standin.py", root, work)
    }

    fn start(name: &'static str, script: &str, root: &Path, work: &Path) -> Result<StandIn, Error> {
        let python = root.join(".venv/bin/python");
        let script = root.join("scripts").join(script);
        let stem = script
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("standin")
            .to_string();
        let ready = work.join(format!("{stem}.url"));
        let log = work.join(format!("{stem}.log"));
        let output = std::fs::File::create(&log)?;
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .args(["--port", "0", "--exit-with-parent", "--ready-file"])
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        let process = ChildProcess::spawn(name, command)?;
        let waited = Command::new(&python)
            .arg(&script)
            .arg("--wait")
            .arg("--ready-file")
            .arg(&ready)
            .args(["--pid", &process.pid().to_string(), "--timeout", "30"])
            .stderr(Stdio::inherit())
            .output()?;
        if !waited.status.success() {
            return Err(format!("{name} did not start (see {})", log.display()).into());
        }
        let url = String::from_utf8(waited.stdout)?.trim().to_string();
        Ok(StandIn { process, url, log })
    }

    pub fn cpu_seconds(&self) -> Option<f64> {
        self.process.cpu_seconds()
    }
}

/// The processes whose CPU the report shows, in this order.
pub const PROCESSES: [&str; 5] = [
    "emulator",
    "orders-dev",
    "load driver",
    "localstripe",
    "Shippo stand-in",
];

/// The local stack as `make dev` runs it (the orders-dev binary), on a free port.
pub struct Stack {
    pub emulator: Emulator,
    pub stripe: StandIn,
    pub shippo: StandIn,
    dev: ChildProcess,
    pub api: String,
    pub dev_log: PathBuf,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub inventory: DynamoInventory,
    /// Queue URLs: our catch-all, and the template's queues the checks look into.
    pub catch_all: String,
    pub publisher_failures: String,
    pub dead_letters: Vec<(String, String)>,
    /// The SDK's operation timeout: how long a call to a silent emulator may take.
    pub operation_timeout: Duration,
}

impl Stack {
    /// Starts orders-dev against `emulator` and the stand-ins, with the settings `make
    /// dev` gives it (scripts/dev.sh), and waits until it answers `/health`, which it
    /// does once its tables, queues, bus and rules exist and its pipeline runs; then
    /// points the stand-ins' webhooks at it, as `make dev` does.
    pub async fn start(
        emulator: Emulator,
        (stripe, shippo): (StandIn, StandIn),
        dev_binary: &Path,
        root: &Path,
        work: &Path,
    ) -> Result<Stack, Error> {
        if !dev_binary.is_file() {
            return Err(format!(
                "{} is missing: build it first (make load does: cargo build --release -p orders-dev)",
                dev_binary.display()
            )
            .into());
        }
        let port = free_port()?;
        let dev_log = work.join("orders-dev.log");
        let log = std::fs::File::create(&dev_log)?;
        let mut command = Command::new(dev_binary);
        command
            .current_dir(root)
            .env("AWS_ENDPOINT_URL", &emulator.url)
            .env("PORT", port.to_string())
            .env("TABLE_NAME", TABLE)
            .env("CARTS_TABLE", CARTS_TABLE)
            .env("EVENT_BUS_NAME", BUS)
            .env("JWT_SECRET", JWT_SECRET)
            // On, as deployed (every create a transaction), but out of the clients' reach.
            .env("ORDER_CREATE_LIMIT", "1000000/60")
            .env("ORDERS_TEMPLATE", root.join("template.yaml"))
            // Payments by card at localstripe, with the local keys.
            .env("STRIPE_API_BASE", &stripe.url)
            .env(
                "STRIPE_SECRET_KEY",
                orders_dev::local::DEV_STRIPE_SECRET_KEY,
            )
            .env(
                "STRIPE_WEBHOOK_SECRET",
                orders_dev::local::DEV_STRIPE_WEBHOOK_SECRET,
            )
            // Labels and tracking at the Shippo stand-in.
            .env("SHIPPO_API_URL", &shippo.url)
            .env("SHIPPO_API_TOKEN", SHIPPO_API_TOKEN)
            .env("SHIPPO_WEBHOOK_TOKEN", SHIPPO_WEBHOOK_TOKEN)
            .env("SHIPPO_ADDRESS_FROM", SHIPPO_ADDRESS_FROM)
            // Email through SES on the emulator from the local sender, invoices from the
            // local seller: local mode's defaults, as in make dev.
            .env_remove("MAIL_FROM")
            .env_remove("MAIL_PROVIDER")
            .env_remove("INVOICE_SELLER")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let dev = ChildProcess::spawn("orders-dev", command)?;
        let api = format!("http://127.0.0.1:{port}");

        // The product's SDK configuration, to know its timeout; our own clients wait
        // longer, since a check that gives up on a busy emulator proves nothing.
        let sdk = orders::adapters::aws::sdk_config().await;
        let operation_timeout = sdk
            .timeout_config()
            .and_then(|t| t.operation_timeout())
            .ok_or("the SDK configuration has no operation timeout")?;
        let sdk = sdk
            .into_builder()
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
            .build();
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let mut stack = Stack {
            emulator,
            stripe,
            shippo,
            dev,
            api,
            dev_log,
            inventory: DynamoInventory::new(dynamodb.clone(), TABLE),
            dynamodb,
            sqs,
            catch_all: String::new(),
            publisher_failures: String::new(),
            dead_letters: Vec::new(),
            operation_timeout,
        };
        stack.wait_until_healthy(Duration::from_secs(60)).await?;
        stack.register_webhooks().await?;
        stack.publisher_failures = stack.queue_url("PublisherFailures").await?;
        for name in ["FulfillmentDeadLetters", "WebhookDeadLetters"] {
            let url = stack.queue_url(name).await?;
            stack.dead_letters.push((name.to_string(), url));
        }
        // An integrator's queue on the bus, subscribed to every order event, as
        // tests/tests/publisher.rs subscribes one: what the bus carried, to count per change.
        stack.catch_all = orders_tests::subscribe_queue(
            &stack.sqs,
            &aws_sdk_eventbridge::Client::new(&sdk),
            BUS,
            CATCH_ALL_QUEUE,
        )
        .await?;
        Ok(stack)
    }

    async fn wait_until_healthy(&mut self, limit: Duration) -> Result<(), Error> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.dev.exited() {
                return Err(format!(
                    "orders-dev exited ({status}) before it was ready; its log: {}",
                    self.dev_log.display()
                )
                .into());
            }
            let health = http.get(format!("{}/health", self.api)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "orders-dev did not answer /health within {} s; its log: {}",
                    limit.as_secs(),
                    self.dev_log.display()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// As scripts/dev.sh does once the API answers: localstripe signs and sends its
    /// payment events to orders-dev's Stripe webhook, and the Shippo stand-in its
    /// `track_updated` to orders-dev's Shippo webhook (the token in the URL).
    async fn register_webhooks(&self) -> Result<(), Error> {
        let http = reqwest::Client::new();
        let form = form(&[
            ("url", &format!("{}/api/payments/stripe/webhook", self.api)),
            ("secret", orders_dev::local::DEV_STRIPE_WEBHOOK_SECRET),
            ("events[]", "payment_intent.succeeded"),
            ("events[]", "payment_intent.payment_failed"),
        ])?;
        let stripe = http
            .post(format!("{}/_config/webhooks/load", self.stripe.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?;
        if !stripe.status().is_success() {
            return Err(format!("localstripe refused the webhook: {}", stripe.status()).into());
        }
        let hook = json!({
            "id": "load",
            "url": format!(
                "{}/api/shipping/shippo/webhook?token={SHIPPO_WEBHOOK_TOKEN}",
                self.api
            ),
        });
        let shippo = http
            .post(format!("{}/_control/webhooks", self.shippo.url))
            .header("content-type", "application/json")
            .body(hook.to_string())
            .send()
            .await?;
        if !shippo.status().is_success() {
            return Err(format!(
                "the Shippo stand-in refused the webhook: {}",
                shippo.status()
            )
            .into());
        }
        Ok(())
    }

    /// `None` while orders-dev runs; its exit status if it has ended.
    pub fn dev_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.dev.exited()
    }

    /// CPU seconds used so far by each of [`PROCESSES`].
    pub fn cpu_seconds(&self) -> [Option<f64>; PROCESSES.len()] {
        [
            self.emulator.cpu_seconds(),
            self.dev.cpu_seconds(),
            cpu_seconds("/proc/self/stat"),
            self.stripe.cpu_seconds(),
            self.shippo.cpu_seconds(),
        ]
    }

    async fn queue_url(&self, name: &str) -> Result<String, Error> {
        Ok(self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| format!("queue {name}: {}", orders::adapters::aws::describe(&e)))?
            .queue_url
            .unwrap_or_default())
    }

    /// Puts `carts` (cart id, user) into the carts table, and stocks the products they
    /// hold.
    pub async fn seed(&self, carts: &[(String, String)]) -> Result<(), Error> {
        crate::common::seed(
            &self.dynamodb,
            CARTS_TABLE,
            TABLE,
            carts,
            CART_LINES,
            INITIAL_STOCK,
        )
        .await
    }

    /// Messages waiting in `queue` (visible or in flight).
    pub async fn queue_depth(&self, queue: &str) -> Result<u64, Error> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| orders::adapters::aws::describe(&e))?
            .attributes
            .unwrap_or_default();
        let count = |name: &A| {
            attributes
                .get(name)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(count(&A::ApproximateNumberOfMessages)
            + count(&A::ApproximateNumberOfMessagesNotVisible))
    }

    /// Receives and deletes what `queue` holds now (bodies, parsed), until it answers
    /// empty.
    pub async fn drain(&self, queue: &str) -> Result<Vec<Value>, Error> {
        let mut bodies = Vec::new();
        loop {
            let page = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .send()
                .await
                .map_err(|e| orders::adapters::aws::describe(&e))?;
            let messages = page.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(bodies);
            }
            let mut done = Vec::new();
            for (i, message) in messages.iter().enumerate() {
                let body = message.body.as_deref().unwrap_or("null");
                bodies.push(serde_json::from_str(body).unwrap_or(json!({ "unparsed": body })));
                if let Some(receipt) = &message.receipt_handle {
                    done.push(
                        aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(receipt)
                            .build()?,
                    );
                }
            }
            self.sqs
                .delete_message_batch()
                .queue_url(queue)
                .set_entries(Some(done))
                .send()
                .await
                .map_err(|e| orders::adapters::aws::describe(&e))?;
        }
    }

    /// Every item of the orders table whose sort key is one of `sort_keys`. (A check
    /// may scan; the product never does.)
    pub async fn scan(
        &self,
        sort_keys: &[&str],
    ) -> Result<Vec<orders::adapters::dynamo::order_item::Item>, Error> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut items = Vec::new();
        let mut start = None;
        let placeholders: Vec<String> = (0..sort_keys.len()).map(|i| format!(":sk{i}")).collect();
        loop {
            // Small pages: each one holds the emulator's DynamoDB lock while moto reads it.
            let mut request = self
                .dynamodb
                .scan()
                .table_name(TABLE)
                .limit(100)
                .filter_expression(format!("SK IN ({})", placeholders.join(", ")))
                .consistent_read(true)
                .set_exclusive_start_key(start);
            for (name, value) in placeholders.iter().zip(sort_keys) {
                request =
                    request.expression_attribute_values(name, AttributeValue::S(value.to_string()));
            }
            let page = request
                .send()
                .await
                .map_err(|e| orders::adapters::aws::describe(&e))?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

/// `pairs` as an `application/x-www-form-urlencoded` body (Stripe's API takes forms).
pub fn form(pairs: &[(&str, &str)]) -> Result<String, Error> {
    let mut url = reqwest::Url::parse("http://form.invalid/")?;
    url.query_pairs_mut().extend_pairs(pairs);
    Ok(url.query().unwrap_or_default().to_string())
}

/// CPU time (user + system) of the process whose `stat` file is `path`, in seconds.
pub fn cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces): utime and stime are the
    // 12th and 13th, in clock ticks.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / per_second)
}

/// A port nothing listens on now (the small race until orders-dev binds it is fine for
/// a loopback-only run; a clash shows as orders-dev failing to start).
fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
