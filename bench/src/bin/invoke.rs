//! `make invoke FN=<function>`: runs one function's binary, as Lambda runs it, on its
//! sample event from `events/`, against the emulator at `AWS_ENDPOINT_URL` (`make dev`'s,
//! or the throw-away one `make invoke` starts).
//!
//! The stack is provisioned as `make dev` provisions it (`orders_dev::local`, idempotent),
//! what the sample acts on is arranged through the API (`orders_dev::samples::arrange`:
//! the demo order, confirmed for the fulfillment samples, the sample webhook), a token
//! is minted for the sample's caller, and the binary is started against the bench's fake
//! Lambda Runtime API (`orders_bench::bench::runner`), which hands it the event once.
//! The function's answer goes to stdout, its log to stderr; the exit status is 0 for a
//! 2xx answer (or a batch without failures), 1 otherwise, 2 when it could not run.
//!
//! Usage: invoke FUNCTION [--bin-dir DIR] [--events-dir DIR] [--template FILE] [--print-event]

use std::path::PathBuf;
use std::process::ExitCode;

use orders::wiring::Wiring;
use orders_bench::Error;
use orders_bench::bench::runner::{Answer, Runner};
use orders_dev::samples::{self, Function};
use orders_dev::template::Template;
use orders_dev::{local, samples::SampleError};

struct Args {
    function: String,
    bin_dir: PathBuf,
    events_dir: PathBuf,
    template: PathBuf,
    /// Print the prepared event instead of invoking (for `cargo lambda invoke --data-file`).
    print_event: bool,
}

fn args() -> Result<Args, Error> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let mut args = Args {
        function: String::new(),
        bin_dir: PathBuf::from(target).join("debug"),
        events_dir: PathBuf::from("events"),
        template: PathBuf::from("template.yaml"),
        print_event: false,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut value = || argv.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--bin-dir" => args.bin_dir = value()?.into(),
            "--events-dir" => args.events_dir = value()?.into(),
            "--template" => args.template = value()?.into(),
            "--print-event" => args.print_event = true,
            _ if !arg.starts_with('-') && args.function.is_empty() => args.function = arg,
            _ => return Err(format!("unexpected argument {arg}").into()),
        }
    }
    if args.function.is_empty() {
        let names = samples::names(&args.events_dir)?.join(" ");
        return Err(format!("usage: make invoke FN=<function>, one of: {names}").into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    match invoke().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("invoke: {e}");
            ExitCode::from(2)
        }
    }
}

async fn invoke() -> Result<bool, Error> {
    let args = args()?;
    let name = args.function.as_str();
    if Function::named(name).is_none() {
        return Err(SampleError::UnknownFunction(name.to_string()).into());
    }
    let settings = local::settings()?;
    let template = Template::load(&args.template)?;
    let sdk = orders::adapters::aws::sdk_config().await;
    let (settings, _) = local::provision(settings, &template, &sdk).await?;
    // Provider keys in Secrets Manager, given by ARN: a function in Lambda refuses a key
    // in its environment.
    let settings = orders_dev::secrets::keys_by_arn(&sdk, settings, "orders-invoke").await?;
    let secret = settings.required("JWT_SECRET")?.to_string();
    let wiring = Wiring::load(settings.clone(), sdk).await;
    let api = wiring.api()?;
    let ids = samples::arrange(&wiring, &api, &args.events_dir, name, secret.as_bytes()).await?;
    let event = samples::load(&args.events_dir, name, &ids, secret.as_bytes())?;
    if args.print_event {
        println!("{}", serde_json::to_string_pretty(&event)?);
        return Ok(true);
    }

    let binary = args.bin_dir.join(name);
    if !binary.is_file() {
        return Err(format!(
            "{} is missing: build it first (cargo build -p functions --bin {name})",
            binary.display()
        )
        .into());
    }
    let work = std::env::temp_dir().join(orders_tests::unique("orders-invoke"));
    std::fs::create_dir_all(&work)?;
    let table = settings.required("TABLE_NAME")?.to_string();
    let carts = settings.get("CARTS_TABLE").unwrap_or_default().to_string();
    let mut runner = Runner::start(
        args.bin_dir.clone(),
        work.clone(),
        None,
        table,
        carts,
        vec![],
    )
    .await?;
    // The function sees this shell's environment with the local stack's settings on top,
    // as if started from it with them exported.
    let keys = orders::wiring::PROVIDER_KEYS;
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| !keys.contains(&name.as_str()))
        .collect();
    // What Lambda sets besides the variables the runner sets.
    for (name, value) in [
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
    ] {
        env.push((name.to_string(), value.to_string()));
    }
    env.push((
        "LAMBDA_TASK_ROOT".to_string(),
        args.bin_dir.display().to_string(),
    ));
    for name in [
        orders::wiring::LOCAL_MODE,
        "TABLE_NAME",
        "CARTS_TABLE",
        "JWT_SECRET",
        "EVENT_BUS_NAME",
        "WEBHOOK_QUEUE_URL",
        "STRIPE_API_BASE",
    ] {
        if let Some(value) = settings.get(name) {
            env.push((name.to_string(), value.to_string()));
        }
    }
    for key in keys {
        let name = orders::wiring::arn_setting(key);
        if let Some(arn) = settings.get(&name) {
            env.push((name, arn.to_string()));
        }
    }
    runner.env = env;
    eprintln!(
        "invoke: {name} on events/{name}.json (order {}{}), emulator {}",
        ids.order,
        if ids.webhook.is_empty() {
            String::new()
        } else {
            format!(", webhook {}", ids.webhook)
        },
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default(),
    );
    let run = runner.run(name, &event).await;
    let log = std::fs::read_to_string(work.join(format!("{name}.log"))).unwrap_or_default();
    eprint!("{log}");
    let _ = std::fs::remove_dir_all(&work);
    let run = run?;
    // method-not-allowed exists to answer 405; every other function, 2xx.
    let success = match Function::named(name) {
        Some(Function::MethodNotAllowed) => run.answer.summary().starts_with("405"),
        _ => run.answer.is_success(),
    };
    match &run.answer {
        Answer::Response(response) => println!("{}", serde_json::to_string_pretty(response)?),
        Answer::Error(error) => println!("{error}"),
    }
    eprintln!(
        "invoke: {name} answered {} (cold start {} ms)",
        run.answer.summary(),
        run.cold_start.as_millis()
    );
    Ok(success)
}
