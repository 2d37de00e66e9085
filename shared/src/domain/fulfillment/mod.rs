//! Fulfillment beyond stock: the parcels an order ships in and what their carriers
//! report. (Stock and its reservations are still `domain::stock`.)

pub mod label_failure;
pub mod shipment;
pub mod tracking;

pub use label_failure::LabelFailure;
pub mod returns;

pub use returns::Return;
pub use shipment::{
    Parcel, Shipment, ShipmentId, ShipmentLine, ShipmentRefusal, ShipmentStatus, ShippingChange,
    Tracked, TrackingEvent,
};
