//! `GET /api/orders/{id}/invoice`: an order's invoice, to its owner and admins.
//! Invoices are issued by the notifications consumer on `order.confirmed`
//! (`services::notifications`); this only reads them.

use std::sync::Arc;

use crate::domain::invoice::Invoice;
use crate::domain::{OrderId, Principal};
use crate::ports::{InvoiceRenderer, InvoiceStore};
use crate::services::orders::OrderError;

pub struct InvoiceService {
    invoices: Arc<dyn InvoiceStore>,
    renderer: Arc<dyn InvoiceRenderer>,
}

impl InvoiceService {
    pub fn new(invoices: Arc<dyn InvoiceStore>, renderer: Arc<dyn InvoiceRenderer>) -> Self {
        InvoiceService { invoices, renderer }
    }

    /// The invoice of order `id`: for its owner and admins; anyone else, and anyone
    /// before the order is confirmed, is told there is none (404), as for the order.
    pub async fn get(&self, caller: &Principal, id: &str) -> Result<Invoice, OrderError> {
        let id = OrderId::parse(id).ok_or(OrderError::NotFound)?;
        match self.invoices.get(&id).await? {
            Some(invoice) if caller.admin || invoice.draft.buyer.user_id == caller.user_id => {
                Ok(invoice)
            }
            _ => Err(OrderError::NotFound),
        }
    }

    pub fn pdf(&self, invoice: &Invoice) -> Vec<u8> {
        self.renderer.pdf(invoice)
    }
}
