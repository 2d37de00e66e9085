//! `Metrics` as CloudWatch Embedded Metric Format: one JSON line per metric set on
//! stdout, which Lambda ships to CloudWatch Logs, where the figures are extracted
//! (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
//! No API call, no permission beyond the logs the function already writes.

use std::io::Write;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::ports::{MetricSet, Metrics};

/// The namespace of every figure (the dashboard and docs/observability.md use it).
pub const NAMESPACE: &str = "Orders";

/// Every line carries `Service = orders`, so each metric is published once across
/// all functions (`[Service]`) and once per value of its own dimensions.
const SERVICE: (&str, &str) = ("Service", "orders");

pub struct EmfMetrics {
    namespace: String,
}

impl EmfMetrics {
    pub fn new(namespace: impl Into<String>) -> EmfMetrics {
        EmfMetrics {
            namespace: namespace.into(),
        }
    }

    /// The EMF document of `set`, as of `at`.
    pub fn line(&self, set: &MetricSet, at: OffsetDateTime) -> String {
        let mut root = Map::new();
        root.insert(SERVICE.0.into(), json!(SERVICE.1));
        let mut keys = vec![SERVICE.0];
        for (name, value) in &set.dimensions {
            root.insert((*name).into(), json!(value));
            keys.push(name);
        }
        let mut dimension_sets = vec![json!([SERVICE.0])];
        if keys.len() > 1 {
            dimension_sets.push(json!(keys));
        }
        let metrics: Vec<Value> = set
            .values
            .iter()
            .map(|(metric, value)| {
                root.insert(metric.name().into(), json!(value));
                json!({ "Name": metric.name(), "Unit": metric.unit() })
            })
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": (at.unix_timestamp_nanos() / 1_000_000) as i64,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": dimension_sets,
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(root).to_string()
    }
}

impl Metrics for EmfMetrics {
    fn record(&self, set: MetricSet) {
        if set.values.is_empty() {
            return;
        }
        let mut line = self.line(&set, OffsetDateTime::now_utc());
        line.push('\n');
        // One write of the whole line, so that log lines never split it.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Metric;
    use time::macros::datetime;

    #[test]
    fn a_metric_set_is_one_emf_document_with_its_dimensions_and_units() {
        let set = MetricSet::of(Metric::OrdersPlaced, 1.0)
            .and(Metric::OrderValue, 7500.0)
            .by("currency", "USD");
        let line = EmfMetrics::new(NAMESPACE).line(&set, datetime!(2026-12-02 01:00:00.250 UTC));
        assert!(!line.contains('\n'));
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            doc,
            json!({
                "_aws": {
                    "Timestamp": 1_796_173_200_250_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Orders",
                        "Dimensions": [["Service"], ["Service", "currency"]],
                        "Metrics": [
                            { "Name": "OrdersPlaced", "Unit": "Count" },
                            { "Name": "OrderValue", "Unit": "None" },
                        ],
                    }],
                },
                "Service": "orders",
                "currency": "USD",
                "OrdersPlaced": 1.0,
                "OrderValue": 7500.0,
            })
        );
    }

    #[test]
    fn every_dimension_and_value_named_in_the_directive_is_in_the_document() {
        // The EMF rule CloudWatch rejects a document for: a name in the metadata
        // without a member of that name at the root.
        let set = MetricSet::of(Metric::ConsumerLag, 42.0).by("consumer", "publisher");
        let doc: Value = serde_json::from_str(
            &EmfMetrics::new(NAMESPACE).line(&set, OffsetDateTime::UNIX_EPOCH),
        )
        .unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        for set in directive["Dimensions"].as_array().unwrap() {
            for key in set.as_array().unwrap() {
                assert!(doc[key.as_str().unwrap()].is_string(), "{key}");
            }
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(doc[metric["Name"].as_str().unwrap()].is_number());
            assert_eq!(metric["Unit"], "Milliseconds");
        }
        assert_eq!(doc["_aws"]["Timestamp"], 0);
    }
}
