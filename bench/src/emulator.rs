//! The client of the emulator's bench counters (scripts/emulator_bench.py, `/_bench/`),
//! for both drivers: `bench` counts the DynamoDB requests of each call, `load` puts the
//! emulator's own timings beside the API's.

use serde_json::Value;

use crate::Error;

/// One DynamoDB request the emulator saw (an entry of `GET /_bench/requests`).
pub struct DynamoRequest {
    /// The X-Amz-Target's operation: GetItem, TransactWriteItems…
    pub operation: String,
    /// The emulator's HTTP status.
    pub status: u64,
    /// The tables the request names.
    pub tables: Vec<String>,
}

/// The `/_bench/` endpoints of the emulator at `url`.
pub struct Counters {
    url: String,
    http: reqwest::Client,
}

impl Counters {
    /// `url`: the emulator's, as in `AWS_ENDPOINT_URL` (`http://host:port`).
    pub fn new(url: &str) -> Result<Counters, Error> {
        if !url.starts_with("http://") {
            return Err(format!("{url}: the emulator's URL must be http://host:port").into());
        }
        Ok(Counters {
            url: url.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> Result<Vec<u8>, Error> {
        let response = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("{method} {path} answered {}", response.status()).into());
        }
        Ok(response.bytes().await?.to_vec())
    }

    /// Forgets the DynamoDB requests counted and timed so far.
    pub async fn reset(&self) -> Result<(), Error> {
        self.call(reqwest::Method::POST, "/_bench/reset").await?;
        Ok(())
    }

    /// The DynamoDB requests since the last reset, oldest first.
    pub async fn requests(&self) -> Result<Vec<DynamoRequest>, Error> {
        let body = self.call(reqwest::Method::GET, "/_bench/requests").await?;
        let log: Value = serde_json::from_slice(&body)?;
        let requests = log["requests"].as_array().cloned().unwrap_or_default();
        Ok(requests
            .iter()
            .map(|r| DynamoRequest {
                operation: r["target"]
                    .as_str()
                    .unwrap_or("")
                    .rsplit('.')
                    .next()
                    .unwrap_or("")
                    .to_string(),
                status: r["status"].as_u64().unwrap_or(0),
                tables: r["tables"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect(),
            })
            .collect())
    }

    /// Per DynamoDB operation, the emulator's own durations since the last reset
    /// (`GET /_bench/timings`: total, lock wait and service, in ms).
    pub async fn timings(&self) -> Result<Value, Error> {
        let body = self.call(reqwest::Method::GET, "/_bench/timings").await?;
        Ok(serde_json::from_slice(&body)?)
    }
}
