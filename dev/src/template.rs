//! Reads what the local stack needs from `template.yaml`, so the emulator runs
//! exactly what would be deployed: the HTTP routes and the orders table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use orders::inbound::http::console::BINARY as CONSOLE;
use serde::Deserialize;
use serde_norway::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
}

/// One HTTP route of the API and the function binary that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    /// As API Gateway writes it: `/api/orders/{order_id}`.
    pub path: String,
    pub binary: String,
}

/// An `AWS::DynamoDB::Table`'s properties, as CloudFormation names them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TableSpec {
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeyElement>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexSpec>,
    #[serde(default)]
    pub billing_mode: Option<String>,
    #[serde(default)]
    pub stream_specification: Option<StreamSpec>,
    #[serde(default)]
    pub time_to_live_specification: Option<TtlSpec>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElement {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct IndexSpec {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection: ProjectionSpec,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionSpec {
    pub projection_type: String,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpec {
    pub stream_view_type: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TtlSpec {
    pub attribute_name: String,
    pub enabled: bool,
}

pub struct Template {
    resources: serde_norway::Mapping,
    globals: Value,
}

impl Template {
    pub fn load(path: impl AsRef<Path>) -> Result<Template, TemplateError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Template::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let document: Value = serde_norway::from_str(text)?;
        let resources = document
            .get("Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .ok_or_else(|| TemplateError::Shape("no Resources".into()))?;
        let globals = document.get("Globals").cloned().unwrap_or(Value::Null);
        Ok(Template { resources, globals })
    }

    fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, resource)| resource.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(name, resource)| (name.as_str().unwrap_or_default(), resource))
    }

    /// Every `HttpApi` event of every function with a method, with the function's
    /// binary: the API's endpoints.
    pub fn routes(&self) -> Result<Vec<Route>, TemplateError> {
        Ok(self
            .all_routes()?
            .into_iter()
            .filter(|r| r.method != "ANY" && r.binary != CONSOLE)
            .collect())
    }

    /// The operator console's routes (`serve-console`). Static files, not the API:
    /// the local server answers them itself (server.rs, `Router::with_console`) and
    /// docs/openapi.yaml does not describe them.
    pub fn console_routes(&self) -> Result<Vec<Route>, TemplateError> {
        Ok(self
            .all_routes()?
            .into_iter()
            .filter(|r| r.binary == CONSOLE)
            .collect())
    }

    /// The `ANY` routes: for a method no route of that path has, API Gateway picks
    /// these (their function answers 405 with `Allow`).
    pub fn method_fallbacks(&self) -> Result<Vec<Route>, TemplateError> {
        Ok(self
            .all_routes()?
            .into_iter()
            .filter(|r| r.method == "ANY")
            .collect())
    }

    fn all_routes(&self) -> Result<Vec<Route>, TemplateError> {
        let mut routes = Vec::new();
        for (name, function) in self.resources_of_type("AWS::Serverless::Function") {
            let binary = function
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    TemplateError::Shape(format!("{name} has no BuildProperties.Binary"))
                })?;
            let events = function
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping);
            for event in events.into_iter().flat_map(|e| e.values()) {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let property = |key: &str| {
                    event
                        .get("Properties")
                        .and_then(|p| p.get(key))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            TemplateError::Shape(format!("{name}: HttpApi event without {key}"))
                        })
                };
                routes.push(Route {
                    method: property("Method")?.to_ascii_uppercase(),
                    path: property("Path")?,
                    binary: binary.to_string(),
                });
            }
        }
        Ok(routes)
    }

    /// The properties of the one DynamoDB table named `logical_id`.
    pub fn table(&self, logical_id: &str) -> Result<TableSpec, TemplateError> {
        let resource = self
            .resources
            .get(logical_id)
            .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
            .ok_or_else(|| TemplateError::Shape(format!("no AWS::DynamoDB::Table {logical_id}")))?;
        let properties = resource
            .get("Properties")
            .cloned()
            .ok_or_else(|| TemplateError::Shape(format!("{logical_id} has no Properties")))?;
        Ok(serde_norway::from_value(properties)?)
    }
}

/// An `AWS::SQS::Queue`, named locally by its logical id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub visibility_timeout: Option<u32>,
    /// The dead-letter queue's logical id and the receives before a message moves there.
    pub dead_letter: Option<(String, u32)>,
}

/// An `AWS::Events::Rule` on the template's bus, with the queues it targets.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub logical_id: String,
    pub pattern: serde_json::Value,
    /// (target id, queue logical id)
    pub targets: Vec<(String, String)>,
}

/// What invokes a non-HTTP function: the table's stream or a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Stream { batch_size: u32 },
    Queue { queue: String, batch_size: u32 },
}

/// A function triggered by the stream or a queue, by its binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub binary: String,
    pub trigger: Trigger,
    /// The function's Timeout in seconds (its own, else the Globals').
    pub timeout: Option<u32>,
}

/// The logical id an intrinsic points at: `!Ref X`, `!GetAtt X.Arn`, `Fn::GetAtt: [X, Arn]`.
fn referenced(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => match &tagged.value {
            Value::String(s) => Some(s.split('.').next().unwrap_or(s).to_string()),
            Value::Sequence(parts) => parts.first().and_then(Value::as_str).map(str::to_string),
            _ => None,
        },
        Value::Mapping(map) => map
            .get("Ref")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                map.get("Fn::GetAtt")
                    .and_then(Value::as_sequence)
                    .and_then(|p| p.first())
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }),
        _ => None,
    }
}

fn number(value: Option<&Value>) -> Option<u32> {
    value
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|n| u32::try_from(n).ok())
}

impl Template {
    pub fn queues(&self) -> Vec<QueueSpec> {
        self.resources_of_type("AWS::SQS::Queue")
            .map(|(name, queue)| {
                let properties = queue.get("Properties");
                let redrive = properties.and_then(|p| p.get("RedrivePolicy"));
                QueueSpec {
                    logical_id: name.to_string(),
                    visibility_timeout: number(properties.and_then(|p| p.get("VisibilityTimeout"))),
                    dead_letter: redrive.and_then(|r| {
                        Some((
                            referenced(r.get("deadLetterTargetArn")?)?,
                            number(r.get("maxReceiveCount"))?,
                        ))
                    }),
                }
            })
            .collect()
    }

    pub fn rules(&self) -> Result<Vec<RuleSpec>, TemplateError> {
        self.resources_of_type("AWS::Events::Rule")
            .map(|(name, rule)| {
                let properties = rule
                    .get("Properties")
                    .ok_or_else(|| TemplateError::Shape(format!("{name} has no Properties")))?;
                let pattern: serde_json::Value =
                    serde_norway::from_value(properties.get("EventPattern").cloned().ok_or_else(
                        || TemplateError::Shape(format!("{name} has no EventPattern")),
                    )?)?;
                let targets = properties
                    .get("Targets")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| {
                        Some((
                            t.get("Id")?.as_str()?.to_string(),
                            referenced(t.get("Arn")?)?,
                        ))
                    })
                    .collect();
                Ok(RuleSpec {
                    logical_id: name.to_string(),
                    pattern,
                    targets,
                })
            })
            .collect()
    }

    /// For each function's binary, the names of the environment variables the template
    /// gives it (its own, not the globals').
    pub fn environments(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.resources_of_type("AWS::Serverless::Function")
            .filter_map(|(_, function)| {
                let binary = function
                    .get("Metadata")?
                    .get("BuildProperties")?
                    .get("Binary")?
                    .as_str()?;
                let names = function
                    .get("Properties")
                    .and_then(|p| p.get("Environment"))
                    .and_then(|e| e.get("Variables"))
                    .and_then(Value::as_mapping)
                    .into_iter()
                    .flat_map(|variables| variables.keys().filter_map(Value::as_str))
                    .map(String::from)
                    .collect();
                Some((binary.to_string(), names))
            })
            .collect()
    }

    /// Every function with a `DynamoDB` or `SQS` event.
    pub fn consumers(&self) -> Vec<Consumer> {
        let global_timeout = number(self.globals.get("Function").and_then(|f| f.get("Timeout")));
        let mut consumers = Vec::new();
        for (_, function) in self.resources_of_type("AWS::Serverless::Function") {
            let Some(binary) = function
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let events = function
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping);
            for event in events.into_iter().flat_map(|e| e.values()) {
                let properties = event.get("Properties");
                let batch_size = number(properties.and_then(|p| p.get("BatchSize"))).unwrap_or(10);
                let trigger = match event.get("Type").and_then(Value::as_str) {
                    Some("DynamoDB") => Trigger::Stream { batch_size },
                    Some("SQS") => {
                        match properties.and_then(|p| p.get("Queue")).and_then(referenced) {
                            Some(queue) => Trigger::Queue { queue, batch_size },
                            None => continue,
                        }
                    }
                    _ => continue,
                };
                consumers.push(Consumer {
                    binary: binary.to_string(),
                    trigger,
                    timeout: number(function.get("Properties").and_then(|p| p.get("Timeout")))
                        .or(global_timeout),
                });
            }
        }
        consumers
    }
}
