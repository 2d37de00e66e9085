//! What the shipment functions need at init: the order store (which also keeps the
//! parcels) and the inventory, on `TABLE_NAME`.

use std::sync::Arc;

use super::{ConfigError, Wiring};
use crate::adapters::dynamo::DynamoInventory;
use crate::inbound::http::ShippingApi;
use crate::services::shipping::ShippingService;

impl Wiring {
    pub fn shipping_service(&self) -> Result<ShippingService, ConfigError> {
        let store = self.order_store()?;
        let inventory = Arc::new(DynamoInventory::new(self.dynamodb(), self.table()?));
        Ok(ShippingService::new(store.clone(), store, inventory))
    }

    /// `POST` and `GET /api/orders/{order_id}/shipments`.
    pub fn shipping_api(&self) -> Result<ShippingApi, ConfigError> {
        Ok(ShippingApi {
            auth: self.authenticator()?,
            shipping: self.shipping_service()?,
        })
    }
}
