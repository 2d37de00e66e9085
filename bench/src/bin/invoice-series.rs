//! How many invoices a second the gapless numbering issues with
//! one series and with several (`INVOICE_SERIES`), on the emulator. `--clients`
//! concurrent issuers each number fresh drafts through the store the notifications
//! consumer uses (`DynamoInvoiceStore::issue`: read the counter, one transaction of
//! the counter and the invoice, again on a lost race) for `--seconds`, once per series
//! count. Then every series is checked gapless: its counter equals the invoices it
//! numbered, and their sequences are 1..=n.
//!
//!     scripts/with-emulator.sh cargo run --release -p orders-bench --bin invoice-series -- \
//!         [--clients 16] [--seconds 10] [--series 1,4,16]
//!
//! moto serialises DynamoDB requests, so the figures are the emulator's, not AWS's;
//! docs/data-design.md ("Invoice series: ceilings") puts them beside the arithmetic
//! for DynamoDB.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orders::adapters::dynamo::DynamoInvoiceStore;
use orders::adapters::dynamo::order_item::order_from_item;
use orders::domain::OrderId;
use orders::domain::invoice::{InvoiceDraft, InvoiceSeries, Seller};
use orders::ports::InvoiceStore;
use orders_tests::{Stack, unique};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    clients: usize,
    seconds: u64,
    series: Vec<u16>,
}

fn options() -> Result<Options, Error> {
    let mut options = Options {
        clients: 16,
        seconds: 10,
        series: vec![1, 4, 16],
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => options.clients = value.parse()?,
            "--seconds" => options.seconds = value.parse()?,
            "--series" => {
                options.series = value
                    .split(',')
                    .map(|n| n.trim().parse::<u16>())
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(options)
}

/// One run: the drafts numbered, the seconds taken, the numbers per series.
struct Run {
    issued: u64,
    elapsed: Duration,
    per_series: BTreeMap<Option<u16>, Vec<u64>>,
}

async fn run(stack: &Stack, template: &InvoiceDraft, count: u16, options: &Options) -> Run {
    let series = InvoiceSeries::new(count).expect("1 to 99 series");
    let store = Arc::new(DynamoInvoiceStore::new(
        stack.dynamodb.clone(),
        stack.table.clone(),
    ));
    let issued = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let prefix = unique("series");
    let workers: Vec<_> = (0..options.clients)
        .map(|client| {
            let (store, issued, template) = (store.clone(), issued.clone(), template.clone());
            let prefix = format!("{prefix}-{count}-{client}");
            tokio::spawn(async move {
                let mut numbers = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let mut draft = template.clone();
                    draft.order_id = OrderId::for_cart(&format!("{prefix}-{n}"));
                    draft.series = series.of(&draft.order_id);
                    match store.issue(&draft).await {
                        Ok(invoice) => {
                            issued.fetch_add(1, Ordering::Relaxed);
                            numbers.push((invoice.number.series, invoice.number.sequence));
                        }
                        Err(e) => eprintln!("invoice-series: {e}"),
                    }
                }
                numbers
            })
        })
        .collect();
    let mut per_series: BTreeMap<Option<u16>, Vec<u64>> = BTreeMap::new();
    for worker in workers {
        for (series, sequence) in worker.await.expect("a worker") {
            per_series.entry(series).or_default().push(sequence);
        }
    }
    Run {
        issued: issued.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        per_series,
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let options = options()?;
    let stack = Stack::new().await;
    stack.put_demo_cart().await;
    // One real confirmed order gives the invoice every draft copies.
    let order_id = stack.order_for("user789", "abc123").await;
    stack.advance(&order_id, &["confirmed"]).await;
    let order = order_from_item(&stack.stored_order(&order_id).await.ok_or("no order")?)?;
    let seller = Seller {
        name: "Bench Shop".into(),
        address: vec!["1 Bench Street".into()],
        tax_id: None,
        email: None,
    };
    let template = InvoiceDraft::for_order(&order, &seller).ok_or("not confirmed")?;

    println!(
        "| series | clients | seconds | invoices | invoices/s | gapless |\n| ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for &count in &options.series {
        // Each series count numbers its own year, so the runs do not share counters.
        let mut year_template = template.clone();
        year_template.issued_at = year_template
            .issued_at
            .replace_year(2100 + i32::from(count))?;
        let run = run(&stack, &year_template, count, &options).await;
        let gapless = run.per_series.values().all(|numbers| {
            let mut sorted = numbers.clone();
            sorted.sort_unstable();
            sorted.iter().copied().eq(1..=sorted.len() as u64)
        });
        println!(
            "| {count} | {} | {:.1} | {} | {:.1} | {} |",
            options.clients,
            run.elapsed.as_secs_f64(),
            run.issued,
            run.issued as f64 / run.elapsed.as_secs_f64(),
            if gapless { "yes" } else { "NO" },
        );
        if !gapless {
            return Err(format!("{count} series: a gap or a duplicate").into());
        }
    }
    Ok(())
}
