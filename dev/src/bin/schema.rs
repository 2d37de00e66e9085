//! `make schema`: writes docs/events.schema.json, as JSON Schema draft 4, into
//! template.yaml's `OrderEventSchema` (the EventBridge schema registry's copy).

use orders_dev::schema::draft4;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!(
        "{root}/docs/events.schema.json"
    ))?)?;
    let path = format!("{root}/template.yaml");
    let template = std::fs::read_to_string(&path)?;
    let updated = orders_dev::schema::with_registered_schema(&template, &draft4(&schema))
        .ok_or("template.yaml has no OrderEventSchema with a `Content: >-` line")?;
    if updated != template {
        std::fs::write(&path, updated)?;
        println!("template.yaml: OrderEventSchema updated from docs/events.schema.json");
    } else {
        println!("template.yaml: OrderEventSchema already matches docs/events.schema.json");
    }
    Ok(())
}
