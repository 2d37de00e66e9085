//! The invoice as a PDF, written with `pdf-writer`: A4 pages of text and rules in
//! Helvetica, one of the 14 standard fonts every PDF reader has, so no font is
//! embedded (the document is a few KiB, and so is what it adds to a binary). Text is
//! WinAnsi-encoded: Latin-1 and the euro sign print as themselves, anything else as `?`.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::domain::Money;
use crate::domain::billing::TaxLine;
use crate::domain::invoice::Invoice;
use crate::ports::InvoiceRenderer;

/// A4, in points.
const PAGE: (f32, f32) = (595.0, 842.0);
const LEFT: f32 = 50.0;
const RIGHT: f32 = 545.0;
const REGULAR: Name = Name(b"F1");
const BOLD: Name = Name(b"F2");
/// Lines of the table on a page; the rest continue on the next. The last page keeps
/// room below them for shipping, the totals and the tax summary.
const LINES_PER_PAGE: usize = 20;
/// Right edges of the table's number columns: quantity, unit price, amount, discount,
/// net, tax rate, tax.
const COLUMNS: [f32; 7] = [232.0, 287.0, 342.0, 394.0, 449.0, 490.0, RIGHT];
/// Characters of a description that fit before the quantity column.
const DESCRIPTION_CHARS: usize = 30;

#[derive(Debug, Clone, Copy, Default)]
pub struct PdfInvoices;

impl InvoiceRenderer for PdfInvoices {
    fn pdf(&self, invoice: &Invoice) -> Vec<u8> {
        render(invoice)
    }
}

/// WinAnsiEncoding: Latin-1 keeps its code points (0x20–0x7E, 0xA0–0xFF).
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' | '\u{a0}'..='\u{ff}' => c as u8,
            '€' => 0x80,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            _ => b'?',
        })
        .collect()
}

/// Helvetica's advance widths (its AFM, per 1000 units) for printable ASCII from
/// the space on, to right-align text; anything else counts as a capital.
#[rustfmt::skip]
const HELVETICA: [u16; 95] = [
    // ' '..'/'
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    // '0'..'?'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    // '@'..'O'
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    // 'P'..'_'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    // '`'..'o'
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    // 'p'..'~'
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/// The width of `text` in points; bold runs about 5 % wider than regular.
fn width(text: &str, size: f32, font: Name) -> f32 {
    let units: u32 = text
        .chars()
        .map(|c| match c {
            ' '..='~' => u32::from(HELVETICA[c as usize - 32]),
            _ => 667,
        })
        .sum();
    let bold = if font == BOLD { 1.05 } else { 1.0 };
    units as f32 * size * bold / 1000.0
}

struct Page {
    content: Content,
}

impl Page {
    fn new() -> Page {
        Page {
            content: Content::new(),
        }
    }

    fn text(&mut self, font: Name, size: f32, x: f32, y: f32, text: &str) {
        let bytes = win_ansi(text);
        self.content
            .begin_text()
            .set_font(font, size)
            .next_line(x, y)
            .show(Str(&bytes))
            .end_text();
    }

    fn right(&mut self, font: Name, size: f32, x: f32, y: f32, text: &str) {
        self.text(font, size, x - width(text, size, font), y, text);
    }

    fn rule(&mut self, y: f32) {
        self.content
            .set_line_width(0.5)
            .move_to(LEFT, y)
            .line_to(RIGHT, y)
            .stroke();
    }
}

fn amount(money: Money) -> String {
    money.to_decimal_string()
}

/// The rates of a line's taxes as people write them: `19%`, `6%+1%`; `-` for none.
fn rates(taxes: &[TaxLine]) -> String {
    if taxes.is_empty() {
        return "-".into();
    }
    let rates: Vec<String> = taxes
        .iter()
        .map(|t| format!("{}%", t.rate.percent()))
        .collect();
    rates.join("+")
}

fn shortened(text: &str, chars: usize) -> String {
    let mut short: String = text.chars().take(chars).collect();
    if text.chars().count() > chars {
        short.push_str("...");
    }
    short
}

pub fn render(invoice: &Invoice) -> Vec<u8> {
    let d = &invoice.draft;
    let currency = d.total.currency().code();
    let chunks: Vec<_> = d.lines.chunks(LINES_PER_PAGE).collect();
    let page_count = chunks.len().max(1);
    let mut pages = Vec::with_capacity(page_count);

    for index in 0..page_count {
        let mut page = Page::new();
        page.text(BOLD, 20.0, LEFT, 780.0, "INVOICE");
        page.right(
            REGULAR,
            10.0,
            RIGHT,
            790.0,
            &format!("Invoice number: {}", invoice.number),
        );
        let date = d.issued_at.date();
        page.right(REGULAR, 10.0, RIGHT, 776.0, &format!("Date: {date}"));
        page.right(
            REGULAR,
            10.0,
            RIGHT,
            762.0,
            &format!("Supply date: {}", d.supply_date),
        );
        page.right(
            REGULAR,
            10.0,
            RIGHT,
            748.0,
            &format!("Order: {}", d.order_id),
        );
        if page_count > 1 {
            page.right(
                REGULAR,
                9.0,
                RIGHT,
                734.0,
                &format!("Page {} of {page_count}", index + 1),
            );
        }

        let mut y = 720.0;
        page.text(BOLD, 10.0, LEFT, y, &d.seller.name);
        page.text(BOLD, 10.0, 320.0, y, "Bill to");
        let mut seller_lines = d.seller.address.clone();
        if let Some(tax_id) = &d.seller.tax_id {
            seller_lines.push(format!("Tax id: {tax_id}"));
        }
        if let Some(email) = &d.seller.email {
            seller_lines.push(email.clone());
        }
        let mut buyer_lines = vec![d.buyer.name.clone()];
        buyer_lines.extend(d.buyer.address.iter().cloned());
        if let Some(email) = &d.buyer.email {
            buyer_lines.push(email.clone());
        }
        for row in 0..seller_lines.len().max(buyer_lines.len()) {
            y -= 13.0;
            if let Some(line) = seller_lines.get(row) {
                page.text(REGULAR, 10.0, LEFT, y, line);
            }
            if let Some(line) = buyer_lines.get(row) {
                page.text(REGULAR, 10.0, 320.0, y, line);
            }
        }

        y -= 30.0;
        page.text(REGULAR, 9.0, LEFT, y, &format!("Amounts in {currency}"));
        y -= 14.0;
        page.text(BOLD, 9.0, LEFT, y, "Description");
        let headings = [
            "Qty",
            "Unit price",
            "Amount",
            "Discount",
            "Net",
            "Tax rate",
            "Tax",
        ];
        for (heading, x) in headings.iter().zip(COLUMNS) {
            page.right(BOLD, 9.0, x, y, heading);
        }
        y -= 6.0;
        page.rule(y);
        for line in chunks.get(index).copied().unwrap_or_default() {
            y -= 14.0;
            let cells = [
                line.quantity.to_string(),
                amount(line.unit_price),
                amount(line.amount),
                amount(line.discount),
                amount(line.net),
                rates(&line.tax_lines),
                amount(line.tax),
            ];
            page.text(
                REGULAR,
                9.0,
                LEFT,
                y,
                &shortened(&line.description, DESCRIPTION_CHARS),
            );
            for (cell, x) in cells.iter().zip(COLUMNS) {
                page.right(REGULAR, 9.0, x, y, cell);
            }
        }

        if index + 1 == page_count {
            if let Some(shipping) = &d.shipping {
                y -= 14.0;
                let label = format!("Shipping: {}", shipping.description);
                page.text(REGULAR, 9.0, LEFT, y, &shortened(&label, DESCRIPTION_CHARS));
                let cells = [
                    (COLUMNS[2], amount(shipping.amount)),
                    (COLUMNS[4], amount(shipping.net)),
                    (COLUMNS[5], rates(&shipping.tax_lines)),
                    (COLUMNS[6], amount(shipping.tax)),
                ];
                for (x, cell) in cells {
                    page.right(REGULAR, 9.0, x, y, &cell);
                }
            }
            y -= 8.0;
            page.rule(y);
            let mut totals = vec![("Subtotal".to_string(), d.subtotal)];
            if d.discount_total.minor() != 0 {
                totals.push(("Discounts".into(), d.discount_total));
            }
            if d.shipping.is_some() {
                totals.push(("Shipping".into(), d.shipping_total));
            }
            totals.push(("Net total".into(), d.net_total()));
            let tax = if d.taxes_included {
                "Tax (included)"
            } else {
                "Tax"
            };
            totals.push((tax.into(), d.tax_total));
            for (label, value) in totals {
                y -= 14.0;
                page.text(REGULAR, 10.0, 330.0, y, &label);
                page.right(REGULAR, 10.0, RIGHT, y, &amount(value));
            }
            y -= 16.0;
            page.text(BOLD, 11.0, 330.0, y, &format!("Total ({currency})"));
            page.right(BOLD, 11.0, RIGHT, y, &amount(d.total));
            if !d.tax_summary.is_empty() {
                y -= 26.0;
                page.text(BOLD, 9.0, LEFT, y, "Tax summary");
                page.right(BOLD, 9.0, COLUMNS[4], y, "Net");
                page.right(BOLD, 9.0, COLUMNS[6], y, "Tax");
                for row in &d.tax_summary {
                    y -= 13.0;
                    let name = format!("{} {}%", row.name, row.rate.percent());
                    page.text(REGULAR, 9.0, LEFT, y, &shortened(&name, DESCRIPTION_CHARS));
                    page.right(REGULAR, 9.0, COLUMNS[4], y, &amount(row.net));
                    page.right(REGULAR, 9.0, COLUMNS[6], y, &amount(row.tax));
                }
            }
            y -= 26.0;
            page.text(
                REGULAR,
                10.0,
                LEFT,
                y,
                &format!("Payment method: {}", d.payment_method),
            );
            if let Some(reference) = &d.payment_reference {
                y -= 13.0;
                page.text(
                    REGULAR,
                    10.0,
                    LEFT,
                    y,
                    &format!("Payment reference: {reference}"),
                );
            }
            y -= 13.0;
            let note = match (d.tax_summary.is_empty(), d.taxes_included) {
                (true, _) => "Prices include any applicable taxes.",
                (false, true) => "Prices include the taxes shown.",
                (false, false) => "Taxes are added to the net amounts.",
            };
            page.text(REGULAR, 9.0, LEFT, y, note);
        }
        pages.push(page);
    }

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 6;
    let page_ids: Vec<Ref> = (0..page_count)
        .map(|i| Ref::new(first_page + 2 * i as i32))
        .collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(page_count as i32);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    let title = format!("Invoice {}", invoice.number);
    pdf.document_info(info)
        .title(TextStr(&title))
        .producer(TextStr("Orders"));
    for (page, id) in pages.into_iter().zip(&page_ids) {
        let contents = Ref::new(id.get() + 1);
        let mut writer = pdf.page(*id);
        writer
            .media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1))
            .parent(tree)
            .contents(contents);
        let mut resources = writer.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.finish();
        writer.finish();
        pdf.stream(contents, &page.content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_prints_and_the_rest_is_replaced() {
        assert_eq!(win_ansi("Café €5 — ok"), b"Caf\xe9 \x805 \x97 ok");
        assert_eq!(win_ansi("日本"), b"??");
    }
}
