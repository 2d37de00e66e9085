//! `make bench`: cold start, peak memory, size and DynamoDB requests per call of every
//! function and of two floors (orders_bench::bench says how).
//!
//!     bench [--runs 15] [--bin-dir target/release] [--out docs/bench.md]
//!           [--only create-order,get-order] [--command "make bench"] [--wrap "strace -f"]

use std::path::PathBuf;

use orders_bench::Error;
use orders_bench::bench::{self, Args};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bench::run(&args()?).await
}

fn args() -> Result<Args, Error> {
    let mut args = Args {
        runs: 15,
        bin_dir: PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or("target".into()))
            .join("release"),
        out: None,
        only: None,
        command: "make bench".into(),
        wrap: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => args.runs = value()?.parse()?,
            "--bin-dir" => args.bin_dir = value()?.into(),
            "--out" => args.out = Some(value()?.into()),
            "--only" => args.only = Some(value()?.split(',').map(String::from).collect()),
            "--command" => args.command = value()?,
            "--wrap" => args.wrap = value()?.split_whitespace().map(String::from).collect(),
            other => {
                return Err(
                    format!("unknown argument {other} (see bench/src/bin/bench.rs)").into(),
                );
            }
        }
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(args)
}
