//! What a customer would get: every message SES on the emulator sent, printed to the
//! log as it goes out (recipient, subject, the first lines, attachments). Read from
//! the emulator's `GET /_ses/messages` (scripts/emulator_ses.py), the same record the
//! README shows how to read back.

use std::time::Duration;

use serde_json::Value;

/// Lines of the text part printed per message.
const FIRST_LINES: usize = 6;

/// Polls `{endpoint}/_ses/messages` every second and prints what is new. An emulator
/// without that endpoint (not scripts/emulator.py) is reported once, then left alone.
pub async fn print_sent_emails(endpoint: String) {
    let http = reqwest::Client::new();
    let url = format!("{}/_ses/messages", endpoint.trim_end_matches('/'));
    let mut seen: u64 = 0;
    let mut warned = false;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let answer = match http.get(format!("{url}?after={seen}")).send().await {
            Ok(response) if response.status().is_success() => response.bytes().await,
            Ok(response) => {
                if !warned {
                    tracing::warn!(status = %response.status(), "the emulator cannot list sent emails (not scripts/emulator.py?); they are not printed");
                    warned = true;
                }
                continue;
            }
            Err(_) => continue,
        };
        let Some(answer) = answer
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        for message in answer["messages"].as_array().into_iter().flatten() {
            println!("{}", describe(message));
        }
        seen = answer["count"].as_u64().unwrap_or(seen);
    }
}

/// One message as the log shows it.
pub fn describe(message: &Value) -> String {
    let to: Vec<&str> = message["to"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut out = format!(
        "email to {}: {}\n",
        to.join(", "),
        message["subject"].as_str().unwrap_or_default()
    );
    let text = message["text"].as_str().unwrap_or_default();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(FIRST_LINES)
    {
        out.push_str("  | ");
        out.push_str(line);
        out.push('\n');
    }
    for attachment in message["attachments"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  + {} ({}, {} bytes)\n",
            attachment["filename"].as_str().unwrap_or_default(),
            attachment["content_type"].as_str().unwrap_or_default(),
            attachment["size"]
        ));
    }
    out
}
