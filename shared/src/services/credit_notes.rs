//! `GET /api/orders/{id}/credit-notes[/{number}]`: an order's credit notes, to its
//! owner and admins. Credit notes are issued by the notifications consumer on each
//! refund's event (`services::notifications`); this only reads them.

use std::sync::Arc;

use crate::domain::billing::{CreditNote, CreditNoteNumber};
use crate::domain::{Order, OrderId, Principal};
use crate::ports::{CreditNoteRenderer, CreditNoteStore, OrderStore};
use crate::services::orders::OrderError;

pub struct CreditNoteService {
    orders: Arc<dyn OrderStore>,
    credit_notes: Arc<dyn CreditNoteStore>,
    renderer: Arc<dyn CreditNoteRenderer>,
}

impl CreditNoteService {
    pub fn new(
        orders: Arc<dyn OrderStore>,
        credit_notes: Arc<dyn CreditNoteStore>,
        renderer: Arc<dyn CreditNoteRenderer>,
    ) -> Self {
        CreditNoteService {
            orders,
            credit_notes,
            renderer,
        }
    }

    /// The credit notes of order `id`, oldest first (none before its first refund):
    /// for its owner and admins; anyone else is told there is no such order (404).
    pub async fn list(&self, caller: &Principal, id: &str) -> Result<Vec<CreditNote>, OrderError> {
        let id = OrderId::parse(id).ok_or(OrderError::NotFound)?;
        match self.orders.get(&id).await? {
            Some(order) if may_read(caller, &order) => Ok(self.credit_notes.list(&id).await?),
            _ => Err(OrderError::NotFound),
        }
    }

    /// Credit note `number` of order `id`, for the order's owner and admins; anyone
    /// else, and a number the order has not got, is 404.
    pub async fn get(
        &self,
        caller: &Principal,
        id: &str,
        number: &str,
    ) -> Result<CreditNote, OrderError> {
        let id = OrderId::parse(id).ok_or(OrderError::NotFound)?;
        let number = CreditNoteNumber::parse(number).ok_or(OrderError::NotFound)?;
        // The buyer on the note is the order's owner: one Query answers both.
        self.credit_notes
            .list(&id)
            .await?
            .into_iter()
            .find(|note| {
                note.number == number
                    && (caller.admin || note.draft.buyer.user_id == caller.user_id)
            })
            .ok_or(OrderError::NotFound)
    }

    pub fn pdf(&self, note: &CreditNote) -> Vec<u8> {
        self.renderer.pdf(note)
    }
}

/// Credit notes are billing documents: the owner's and the shop's (admins), not the
/// fulfillment service's.
fn may_read(caller: &Principal, order: &Order) -> bool {
    caller.admin || order.user_id == caller.user_id
}
