//! The local stack: everything `make dev` runs in one process, against an AWS
//! emulator, built from `template.yaml` and the same handlers as the Lambdas.

pub mod local;
pub mod mail;
pub mod pipeline;
pub mod provision;
pub mod redrive;
pub mod samples;
pub mod schema;
pub mod secrets;
pub mod server;
pub mod template;
