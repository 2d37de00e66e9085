//! The credit note as a PDF: the invoice's pages (`invoice_pdf`: A4, DejaVu Sans
//! embedded as a subset with a ToUnicode map, so names in Latin, Greek and Cyrillic
//! print and extract as the JSON has them), holding what a refund gave back per line,
//! shipping and tax rate, and the invoice it corrects.

use super::invoice_pdf::{
    BOLD, DESCRIPTION_CHARS, LEFT, Page, PdfFont, REGULAR, RIGHT, amount, parties, rates,
    shortened, write,
};
use crate::domain::billing::CreditNote;
use crate::ports::CreditNoteRenderer;

/// Lines of the table on a page; the rest continue on the next.
const LINES_PER_PAGE: usize = 20;
/// Right edges of the number columns: net, tax rate, tax, total.
const COLUMNS: [f32; 4] = [360.0, 420.0, 480.0, RIGHT];

#[derive(Debug, Clone, Copy)]
pub struct PdfCreditNotes {
    pub font: PdfFont,
}

impl CreditNoteRenderer for PdfCreditNotes {
    fn pdf(&self, note: &CreditNote) -> Vec<u8> {
        render(self.font, note)
    }
}

pub fn render(font: PdfFont, note: &CreditNote) -> Vec<u8> {
    let d = &note.draft;
    let currency = d.total.currency().code();
    let chunks: Vec<_> = d.lines.chunks(LINES_PER_PAGE).collect();
    let page_count = chunks.len().max(1);
    let mut pages = Vec::with_capacity(page_count);

    for index in 0..page_count {
        let mut page = Page::new(font);
        page.text(BOLD, 20.0, LEFT, 780.0, "CREDIT NOTE");
        let heading = [
            format!("Credit note number: {}", note.number),
            format!("Date: {}", d.issued_at.date()),
            format!("Corrects invoice: {}", d.invoice_number),
            format!("Order: {}", d.order_id),
        ];
        for (row, text) in heading.iter().enumerate() {
            page.right(REGULAR, 10.0, RIGHT, 790.0 - 14.0 * row as f32, text);
        }
        if page_count > 1 {
            let text = format!("Page {} of {page_count}", index + 1);
            page.right(REGULAR, 9.0, RIGHT, 734.0, &text);
        }
        let mut y = parties(&mut page, 720.0, &d.seller, &d.buyer);

        y -= 30.0;
        page.text(REGULAR, 9.0, LEFT, y, &format!("Refunded, in {currency}"));
        y -= 14.0;
        page.text(BOLD, 9.0, LEFT, y, "Description");
        for (heading, x) in ["Net", "Tax rate", "Tax", "Total"].iter().zip(COLUMNS) {
            page.right(BOLD, 9.0, x, y, heading);
        }
        y -= 6.0;
        page.rule(y);
        let mut rows: Vec<(String, [String; 4])> = chunks
            .get(index)
            .copied()
            .unwrap_or_default()
            .iter()
            .map(|line| {
                (
                    line.description.clone(),
                    [
                        amount(line.net),
                        rates(&line.tax_lines),
                        amount(line.tax),
                        amount(line.total),
                    ],
                )
            })
            .collect();
        let last = index + 1 == page_count;
        if let (true, Some(shipping)) = (last, &d.shipping) {
            rows.push((
                format!("Shipping: {}", shipping.description),
                [
                    amount(shipping.net),
                    rates(&shipping.tax_lines),
                    amount(shipping.tax),
                    amount(shipping.total),
                ],
            ));
        }
        for (description, cells) in rows {
            y -= 14.0;
            page.text(
                REGULAR,
                9.0,
                LEFT,
                y,
                &shortened(&description, DESCRIPTION_CHARS),
            );
            for (cell, x) in cells.iter().zip(COLUMNS) {
                page.right(REGULAR, 9.0, x, y, cell);
            }
        }

        if last {
            y -= 8.0;
            page.rule(y);
            for (label, value) in [("Net total", d.net_total), ("Tax", d.tax_total)] {
                y -= 14.0;
                page.text(REGULAR, 10.0, 330.0, y, label);
                page.right(REGULAR, 10.0, RIGHT, y, &amount(value));
            }
            y -= 16.0;
            let label = format!("Total refunded ({currency})");
            page.text(BOLD, 11.0, 330.0, y, &label);
            page.right(BOLD, 11.0, RIGHT, y, &amount(d.total));
            if !d.tax_summary.is_empty() {
                y -= 26.0;
                page.text(BOLD, 9.0, LEFT, y, "Tax summary");
                page.right(BOLD, 9.0, COLUMNS[0], y, "Net");
                page.right(BOLD, 9.0, COLUMNS[2], y, "Tax");
                for row in &d.tax_summary {
                    y -= 13.0;
                    let name = format!("{} {}%", row.name, row.rate.percent());
                    page.text(REGULAR, 9.0, LEFT, y, &shortened(&name, DESCRIPTION_CHARS));
                    page.right(REGULAR, 9.0, COLUMNS[0], y, &amount(row.net));
                    page.right(REGULAR, 9.0, COLUMNS[2], y, &amount(row.tax));
                }
            }
            y -= 26.0;
            let reference = format!("Refund reference: {}", d.refund_id);
            page.text(REGULAR, 10.0, LEFT, y, &reference);
            y -= 13.0;
            let note = format!(
                "This credit note reduces invoice {} by the amounts shown.",
                d.invoice_number
            );
            page.text(REGULAR, 9.0, LEFT, y, &note);
        }
        pages.push(page);
    }

    write(font, &format!("Credit note {}", note.number), pages)
}
