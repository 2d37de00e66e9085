//! Shipping: an order's parcels. `POST /api/orders/{id}/shipments` adds one (by line
//! and quantity, with a hand-entered tracking number), `GET …/shipments` lists them.
//!
//! Every change is planned from the order as read and written in one conditional
//! write on the version it was read at (`ShipmentStore::record_shipping`); a write
//! that loses a race gets the order as it now is and plans again from it, so two
//! concurrent parcels never ship the same line twice. An `Idempotency-Key` names the
//! shipment (`ShipmentId::for_request`): a retry finds the shipment its first attempt
//! wrote on the order itself and is answered with it, so no key ever makes two.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::fulfillment::shipment::{add_shipment, parcel_lines, shippable};
use crate::domain::fulfillment::{
    Shipment, ShipmentId, ShipmentLine, ShipmentRefusal, ShipmentStatus,
};
use crate::domain::stock::StockLine;
use crate::domain::{FieldErrors, Order, OrderId, Principal, Role};
use crate::ports::{ChangeOutcome, Inventory, OrderStore, ShipmentStore, StoreError};

/// How often a shipment is planned again after losing a race before giving up (409).
const ATTEMPTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum ShipmentError {
    #[error("the request is invalid")]
    Invalid(FieldErrors),
    #[error("only admins and the fulfillment service ship orders")]
    Forbidden,
    #[error("order not found")]
    NotFound,
    #[error("order {} is {}; only a confirmed order ships", current.id, current.status)]
    NotShippable { current: Box<Order> },
    #[error(
        "order {} is backordered: no stock is reserved for it, so it cannot be shipped until fulfillment reserves it",
        current.id
    )]
    Backordered { current: Box<Order> },
    #[error("{field}: {requested} of {product_id} asked for, {unshipped} left unshipped")]
    TooMany {
        field: String,
        product_id: String,
        requested: u32,
        unshipped: u32,
    },
    #[error("every line of order {0} is shipped already")]
    NothingToShip(OrderId),
    #[error("this Idempotency-Key was used with a different request")]
    KeyReused,
    #[error("concurrent requests are changing this order; retry")]
    Contention,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a caller asks to ship; every member optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipmentRequest {
    /// Left out: everything not yet shipped.
    pub items: Option<Vec<ShipmentLine>>,
    /// Shippo's carrier token, lower case.
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub servicelevel: Option<String>,
}

/// `Idempotency-Key` and the fingerprint of the body it came with.
#[derive(Debug, Clone)]
pub struct IdempotentShipment {
    pub key: String,
    pub fingerprint: String,
}

/// A shipment made (or found made by an earlier attempt of the same request).
#[derive(Debug)]
pub struct Shipped {
    pub order: Order,
    pub shipment: Shipment,
    pub replayed: bool,
}

pub struct ShippingService {
    orders: Arc<dyn OrderStore>,
    shipments: Arc<dyn ShipmentStore>,
    inventory: Arc<dyn Inventory>,
}

impl ShippingService {
    pub fn new(
        orders: Arc<dyn OrderStore>,
        shipments: Arc<dyn ShipmentStore>,
        inventory: Arc<dyn Inventory>,
    ) -> Self {
        ShippingService {
            orders,
            shipments,
            inventory,
        }
    }

    /// The order's parcels, for whoever may read the order.
    pub async fn list(&self, caller: &Principal, id: &str) -> Result<Order, ShipmentError> {
        let id = OrderId::parse(id).ok_or(ShipmentError::NotFound)?;
        match self.orders.get(&id).await? {
            Some(order)
                if caller.admin || caller.fulfillment || order.user_id == caller.user_id =>
            {
                Ok(order)
            }
            _ => Err(ShipmentError::NotFound),
        }
    }

    /// Ships `request`'s lines of the order as one parcel.
    pub async fn create(
        &self,
        caller: &Principal,
        id: &str,
        request: ShipmentRequest,
        idempotency: Option<IdempotentShipment>,
    ) -> Result<Shipped, ShipmentError> {
        let role = if caller.admin {
            Role::Admin
        } else if caller.fulfillment {
            Role::Fulfillment
        } else {
            return Err(ShipmentError::Forbidden);
        };
        let id = OrderId::parse(id).ok_or(ShipmentError::NotFound)?;
        let shipment_id = match &idempotency {
            Some(i) => ShipmentId::for_request(id.as_str(), &caller.user_id, &i.key),
            None => ShipmentId::fresh(),
        };
        let fingerprint = idempotency.map(|i| i.fingerprint);
        let mut current = self.orders.get(&id).await?.ok_or(ShipmentError::NotFound)?;
        let mut reserved = false;
        for _ in 0..ATTEMPTS {
            if let Some(existing) = current.shipment(&shipment_id) {
                // An earlier attempt of this very request: answer as it was answered.
                if existing.fingerprint != fingerprint {
                    return Err(ShipmentError::KeyReused);
                }
                let shipment = existing.clone();
                return Ok(Shipped {
                    order: current,
                    shipment,
                    replayed: true,
                });
            }
            let now = OffsetDateTime::now_utc();
            shippable(&current).map_err(|r| refused(r, &current))?;
            let items = parcel_lines(&current, request.items.as_deref())
                .map_err(|r| refused(r, &current))?;
            let shipment = Shipment {
                shipment_id: shipment_id.clone(),
                items,
                carrier: request.carrier.clone(),
                servicelevel: request.servicelevel.clone(),
                tracking_number: request.tracking_number.clone(),
                tracking_url: None,
                label_url: None,
                cost: None,
                // Handed to the carrier by a person: on its way.
                status: ShipmentStatus::InTransit,
                tracking: Vec::new(),
                created_at: now,
                fingerprint: fingerprint.clone(),
            };
            let change = add_shipment(&current, shipment.clone(), &caller.user_id, role)
                .map_err(|r| refused(r, &current))?;
            if !reserved {
                // Goods that ship come off the stock: the order's reservation, made
                // now if fulfillment has not made it yet (at most once per order).
                self.reserve(&current).await?;
                reserved = true;
            }
            let after = change.apply(&current);
            match self
                .shipments
                .record_shipping(&after, &change.indexed)
                .await?
            {
                ChangeOutcome::Changed(order) => {
                    tracing::info!(order_id = %id, shipment_id = %shipment_id, status = %order.status, "shipment recorded");
                    return Ok(Shipped {
                        order: *order,
                        shipment,
                        replayed: false,
                    });
                }
                ChangeOutcome::Refused(None) => return Err(ShipmentError::NotFound),
                // Someone changed the order since it was read: plan again from it.
                ChangeOutcome::Refused(Some(order)) => current = *order,
            }
        }
        Err(ShipmentError::Contention)
    }

    async fn reserve(&self, order: &Order) -> Result<(), StoreError> {
        let lines: Vec<StockLine> = order
            .items
            .iter()
            .map(|l| StockLine {
                product_id: l.product_id.clone(),
                quantity: u64::from(l.quantity),
            })
            .collect();
        let outcome = self.inventory.reserve(&order.id, &lines).await?;
        tracing::info!(order_id = %order.id, ?outcome, "stock for a shipment");
        Ok(())
    }
}

fn refused(refusal: ShipmentRefusal, order: &Order) -> ShipmentError {
    match refusal {
        ShipmentRefusal::NotShippable(_) => ShipmentError::NotShippable {
            current: Box::new(order.clone()),
        },
        ShipmentRefusal::Backordered => ShipmentError::Backordered {
            current: Box::new(order.clone()),
        },
        ShipmentRefusal::Invalid(errors) => ShipmentError::Invalid(errors),
        ShipmentRefusal::TooMany {
            field,
            product_id,
            requested,
            unshipped,
        } => ShipmentError::TooMany {
            field,
            product_id,
            requested,
            unshipped,
        },
        ShipmentRefusal::NothingToShip => ShipmentError::NothingToShip(order.id.clone()),
    }
}
