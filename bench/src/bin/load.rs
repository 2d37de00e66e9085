//! `make load`: the local stack under load and under faults (orders_bench::load says how).
//! The exit status is 1 if a check failed, 2 if the run itself could not be done.
//!
//!     load [--clients 8] [--seconds 20] [--fault-seconds 20] [--short-seconds 10]
//!          [--stop-after 5] [--stop-for 8] [--max-orders 1000] [--deadline 900]
//!          [--dev-bin target/release/orders-dev] [--out docs/load.md] [--command "make load"]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use orders_bench::Error;
use orders_bench::load::{self, Settings};

fn main() -> ExitCode {
    let settings = match settings() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
    match load::start(&settings) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::from(2)
        }
    }
}

fn settings() -> Result<Settings, Error> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let mut settings = Settings {
        clients: 8,
        seconds: Duration::from_secs(20),
        fault_seconds: Duration::from_secs(20),
        short_seconds: Duration::from_secs(10),
        stop_after: Duration::from_secs(5),
        stop_for: Duration::from_secs(8),
        max_orders: 1000,
        deadline: Duration::from_secs(900),
        dev_binary: PathBuf::from(target).join("release/orders-dev"),
        root: std::env::current_dir()?,
        out: None,
        command: "load".into(),
    };
    let (mut stop_after_given, mut short_given) = (false, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let mut seconds =
            || -> Result<Duration, Error> { Ok(Duration::from_secs(value()?.parse()?)) };
        match flag.as_str() {
            "--clients" => settings.clients = value()?.parse()?,
            "--seconds" => settings.seconds = seconds()?,
            "--fault-seconds" => settings.fault_seconds = seconds()?,
            "--short-seconds" => {
                settings.short_seconds = seconds()?;
                short_given = true;
            }
            "--stop-after" => {
                settings.stop_after = seconds()?;
                stop_after_given = true;
            }
            "--stop-for" => settings.stop_for = seconds()?,
            "--max-orders" => settings.max_orders = value()?.parse()?,
            "--deadline" => settings.deadline = seconds()?,
            "--dev-bin" => settings.dev_binary = value()?.into(),
            "--out" => settings.out = Some(value()?.into()),
            "--command" => settings.command = value()?,
            other => {
                return Err(format!("unknown argument {other} (see bench/src/bin/load.rs)").into());
            }
        }
    }
    if settings.clients == 0 || settings.max_orders < settings.clients {
        return Err("--clients must be at least 1, and --max-orders at least --clients".into());
    }
    // A reduced run (CI's: a few seconds per phase) scales what was not given: the
    // short phases to the steady one, and the stop to the fault window, keeping the
    // stop itself longer than the SDK's operation timeout, or it proves nothing.
    if !short_given {
        settings.short_seconds = settings.short_seconds.min(settings.seconds);
    }
    if !stop_after_given {
        let room = settings
            .fault_seconds
            .saturating_sub(settings.stop_for + Duration::from_secs(2));
        settings.stop_after = room.clamp(Duration::from_secs(1), settings.stop_after);
    }
    let fits = settings.stop_after + settings.stop_for + Duration::from_secs(1);
    if !stop_after_given && settings.fault_seconds < fits {
        eprintln!(
            "load: the fault window is {} s, so that the emulator's {} s stop fits in it",
            fits.as_secs(),
            settings.stop_for.as_secs()
        );
        settings.fault_seconds = fits;
    }
    if settings.stop_after + settings.stop_for >= settings.fault_seconds {
        return Err("--stop-after + --stop-for must end before --fault-seconds".into());
    }
    Ok(settings)
}
