//! Settings from the environment, and wiring the adapters they name.

use std::sync::Arc;

use crate::adapters::{CartApi, CartTable, DynamoOrderStore};
use crate::auth::AuthConfigError;
use crate::ports::CartSource;
use crate::service::OrderService;

/// The documented local default for `CURSOR_SECRET`.
pub const DEV_CURSOR_SECRET: &str = "orders-local-dev-cursor-secret";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
}

/// Where carts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartsFrom {
    /// `CARTS_TABLE`: a DynamoDB table of carts.
    Table(String),
    /// `CART_API_URL`: the Shopping Cart API.
    Api(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub carts: Option<CartsFrom>,
    pub cursor_secret: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let carts = match (var("CARTS_TABLE"), var("CART_API_URL")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "set CARTS_TABLE or CART_API_URL, not both".into(),
                ));
            }
            (Some(table), None) => Some(CartsFrom::Table(table)),
            (None, Some(url)) => Some(CartsFrom::Api(url)),
            (None, None) => None,
        };
        let cursor_secret = var("CURSOR_SECRET").unwrap_or_else(|| {
            tracing::warn!("CURSOR_SECRET is not set; using the local development default");
            DEV_CURSOR_SECRET.to_string()
        });
        Ok(Config {
            table: var("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?,
            carts,
            cursor_secret,
        })
    }

    /// Builds the order service on `dynamodb` (and, for checkout, the cart source).
    pub fn order_service(
        &self,
        dynamodb: &aws_sdk_dynamodb::Client,
        needs_carts: bool,
    ) -> Result<OrderService, ConfigError> {
        let carts: Option<Arc<dyn CartSource>> = match (&self.carts, needs_carts) {
            (_, false) => None,
            (None, true) => return Err(ConfigError::Missing("CARTS_TABLE or CART_API_URL")),
            (Some(CartsFrom::Table(table)), true) => {
                Some(Arc::new(CartTable::new(dynamodb.clone(), table)))
            }
            (Some(CartsFrom::Api(url)), true) => {
                Some(Arc::new(CartApi::new(url).map_err(ConfigError::Invalid)?))
            }
        };
        let store = Arc::new(DynamoOrderStore::new(dynamodb.clone(), &self.table));
        Ok(OrderService::new(
            store,
            carts,
            self.cursor_secret.as_bytes(),
        ))
    }
}
