//! The invoice as a PDF, written with `pdf-writer`: A4 pages of text and rules in
//! DejaVu Sans (`fonts/`, an open font with Latin, Greek and Cyrillic), embedded as a
//! subset of the glyphs the document uses (`subsetter`) with a ToUnicode map, so that
//! names in any of those scripts print, and the text a reader extracts (pypdf,
//! pdftotext) is the text of the JSON invoice. A character the font lacks prints as
//! the replacement character `�` and is logged, never dropped. Bold is the regular
//! face drawn with a thin outline: one font file, not two.
//!
//! The font is not in the binaries (it was a tenth of their zips): deployed, it ships in
//! a Lambda layer attached only to the functions that render PDFs, and is read from
//! `PDF_FONT_PATH` once per process ([`PdfFont::load`], at init: a missing or broken
//! font stops the function there, not on a customer's PDF).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, TextRenderingMode, UnicodeCmap};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use subsetter::GlyphRemapper;
use ttf_parser::{Face, GlyphId};

use crate::domain::Money;
use crate::domain::billing::TaxLine;
use crate::domain::invoice::{Buyer, Invoice, Seller};
use crate::ports::InvoiceRenderer;

/// DejaVu Sans 2.37 (`fonts/LICENSE`) in this source tree: the font outside Lambda
/// (tests, `make dev`, `make bench`, `make invoke`).
pub const SOURCE_FONT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fonts/DejaVuSans.ttf");
/// Where the font layer (template.yaml, `PdfFontLayer`: the `fonts/` directory) puts it.
pub const LAYER_FONT: &str = "/opt/DejaVuSans.ttf";
/// The font's PostScript name with a subset tag, as PDF names embedded subsets.
const FONT_NAME: Name = Name(b"ORDERS+DejaVuSans");
/// Printed for a character the font has no glyph for.
const REPLACEMENT: char = '\u{fffd}';

/// A4, in points.
const PAGE: (f32, f32) = (595.0, 842.0);
pub(super) const LEFT: f32 = 50.0;
pub(super) const RIGHT: f32 = 545.0;
pub(super) const REGULAR: Name = Name(b"F1");
pub(super) const BOLD: Name = Name(b"F2");
/// Lines of the table on a page; the rest continue on the next. The last page keeps
/// room below them for shipping, the totals and the tax summary.
const LINES_PER_PAGE: usize = 20;
/// Right edges of the table's number columns: quantity, unit price, amount, discount,
/// net, tax rate, tax.
const COLUMNS: [f32; 7] = [232.0, 287.0, 342.0, 394.0, 449.0, 490.0, RIGHT];
/// Characters of a description that fit before the quantity column.
pub(super) const DESCRIPTION_CHARS: usize = 30;

/// Why the PDF font could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error("cannot read the PDF font {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a TrueType font")]
    NotAFont { path: PathBuf },
}

/// The font documents are set in: its file and its parsed tables, loaded once per
/// path and process and kept for the process's life (as the compiled-in font was).
#[derive(Clone, Copy)]
pub struct PdfFont {
    file: &'static [u8],
    face: &'static Face<'static>,
}

impl std::fmt::Debug for PdfFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PdfFont({} bytes)", self.file.len())
    }
}

impl PdfFont {
    /// Reads and parses the font at `path`, or answers the one this process already
    /// loaded from there: wirings are built more than once in tests and `make dev`.
    pub fn load(path: &Path) -> Result<PdfFont, FontError> {
        static LOADED: Mutex<Vec<(PathBuf, PdfFont)>> = Mutex::new(Vec::new());
        let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, font)) = loaded.iter().find(|(p, _)| p == path) {
            return Ok(*font);
        }
        let bytes = std::fs::read(path).map_err(|source| FontError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let face = Face::parse(file, 0).map_err(|_| FontError::NotAFont {
            path: path.to_owned(),
        })?;
        let font = PdfFont {
            file,
            face: Box::leak(Box::new(face)),
        };
        loaded.push((path.to_owned(), font));
        Ok(font)
    }

    /// The font's glyph for `c`; `None` when it has none.
    fn glyph(self, c: char) -> Option<GlyphId> {
        self.face.glyph_index(c).filter(|g| g.0 != 0)
    }

    /// The glyph printed for `c`: its own, or the replacement character's.
    fn printed(self, c: char) -> (char, GlyphId) {
        match self.glyph(c) {
            Some(g) => (c, g),
            None => (REPLACEMENT, self.glyph(REPLACEMENT).unwrap_or(GlyphId(0))),
        }
    }

    /// An advance in thousandths of the font size, as PDF widths are given.
    fn advance(self, g: GlyphId) -> f32 {
        let face = self.face;
        f32::from(face.glyph_hor_advance(g).unwrap_or(0)) * 1000.0 / f32::from(face.units_per_em())
    }

    /// The width of `text` in points; bold draws a 0.3 pt outline around the same glyphs.
    fn width(self, text: &str, size: f32, font: Name) -> f32 {
        let units: f32 = text.chars().map(|c| self.advance(self.printed(c).1)).sum();
        let outline = if font == BOLD { 0.3 } else { 0.0 };
        units * size / 1000.0 + outline
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PdfInvoices {
    pub font: PdfFont,
}

impl InvoiceRenderer for PdfInvoices {
    fn pdf(&self, invoice: &Invoice) -> Vec<u8> {
        render(self.font, invoice)
    }
}

/// What a page draws, kept until the whole document is laid out: the font subset can
/// only be made once every character is known.
enum Mark {
    Text {
        font: Name<'static>,
        size: f32,
        x: f32,
        y: f32,
        text: String,
    },
    Rule {
        y: f32,
    },
}

pub(super) struct Page {
    font: PdfFont,
    marks: Vec<Mark>,
}

impl Page {
    pub(super) fn new(font: PdfFont) -> Page {
        Page {
            font,
            marks: Vec::new(),
        }
    }

    pub(super) fn text(&mut self, font: Name<'static>, size: f32, x: f32, y: f32, text: &str) {
        self.marks.push(Mark::Text {
            font,
            size,
            x,
            y,
            text: text.to_string(),
        });
    }

    pub(super) fn right(&mut self, font: Name<'static>, size: f32, x: f32, y: f32, text: &str) {
        let width = self.font.width(text, size, font);
        self.text(font, size, x - width, y, text);
    }

    pub(super) fn rule(&mut self, y: f32) {
        self.marks.push(Mark::Rule { y });
    }
}

pub(super) fn amount(money: Money) -> String {
    money.to_decimal_string()
}

/// The rates of a line's taxes as people write them: `19%`, `6%+1%`; `-` for none.
pub(super) fn rates(taxes: &[TaxLine]) -> String {
    if taxes.is_empty() {
        return "-".into();
    }
    let rates: Vec<String> = taxes
        .iter()
        .map(|t| format!("{}%", t.rate.percent()))
        .collect();
    rates.join("+")
}

pub(super) fn shortened(text: &str, chars: usize) -> String {
    let mut short: String = text.chars().take(chars).collect();
    if text.chars().count() > chars {
        short.push_str("...");
    }
    short
}

pub fn render(font: PdfFont, invoice: &Invoice) -> Vec<u8> {
    let d = &invoice.draft;
    let currency = d.total.currency().code();
    let chunks: Vec<_> = d.lines.chunks(LINES_PER_PAGE).collect();
    let page_count = chunks.len().max(1);
    let mut pages = Vec::with_capacity(page_count);

    for index in 0..page_count {
        let mut page = Page::new(font);
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

        let mut y = parties(&mut page, 720.0, &d.seller, &d.buyer);

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

    write(font, &format!("Invoice {}", invoice.number), pages)
}

/// The seller (with its tax id) beside the buyer ("Bill to"), from `y` down; answers
/// the height reached.
pub(super) fn parties(page: &mut Page, mut y: f32, seller: &Seller, buyer: &Buyer) -> f32 {
    page.text(BOLD, 10.0, LEFT, y, &seller.name);
    page.text(BOLD, 10.0, 320.0, y, "Bill to");
    let mut seller_lines = seller.address.clone();
    if let Some(tax_id) = &seller.tax_id {
        seller_lines.push(format!("Tax id: {tax_id}"));
    }
    if let Some(email) = &seller.email {
        seller_lines.push(email.clone());
    }
    let mut buyer_lines = vec![buyer.name.clone()];
    buyer_lines.extend(buyer.address.iter().cloned());
    if let Some(email) = &buyer.email {
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
    y
}

/// The glyphs a document prints, numbered as its font subset numbers them (the CIDs
/// its text is written in), and the character each stands for.
struct Glyphs {
    remapper: GlyphRemapper,
    of_char: BTreeMap<char, u16>,
    /// Per CID, the character the ToUnicode map gives it.
    chars: BTreeMap<u16, char>,
}

impl Glyphs {
    fn of(font: PdfFont, pages: &[Page]) -> Glyphs {
        let used: BTreeSet<char> = pages
            .iter()
            .flat_map(|p| &p.marks)
            .filter_map(|m| match m {
                Mark::Text { text, .. } => Some(text.chars()),
                Mark::Rule { .. } => None,
            })
            .flatten()
            .collect();
        let mut remapper = GlyphRemapper::new();
        let mut of_char = BTreeMap::new();
        let mut chars = BTreeMap::new();
        for c in used {
            let (shown, g) = font.printed(c);
            if shown != c {
                tracing::warn!(
                    character = %c.escape_unicode(),
                    "the invoice font has no glyph for a character; printed as U+FFFD"
                );
            }
            let cid = remapper.remap(g.0);
            of_char.insert(c, cid);
            chars.entry(cid).or_insert(shown);
        }
        Glyphs {
            remapper,
            of_char,
            chars,
        }
    }

    /// `text` as the big-endian CIDs a `Tj` of an Identity-H font shows.
    fn encode(&self, text: &str) -> Vec<u8> {
        text.chars()
            .flat_map(|c| self.of_char.get(&c).copied().unwrap_or(0).to_be_bytes())
            .collect()
    }
}

pub(super) fn write(typeface: PdfFont, title: &str, pages: Vec<Page>) -> Vec<u8> {
    let glyphs = Glyphs::of(typeface, &pages);
    // Without a subset (never seen: the font is ours), the whole font is embedded,
    // its glyphs addressed by their own ids.
    let (font_file, cid_is_gid) = match subsetter::subset(typeface.file, 0, &glyphs.remapper) {
        Ok(subset) => (subset, false),
        Err(e) => {
            tracing::error!(error = ?e, "subsetting the invoice font failed; embedding all of it");
            (typeface.file.to_vec(), true)
        }
    };
    let old_gids: Vec<u16> = glyphs.remapper.remapped_gids().collect();
    let cid = |new: u16| {
        if cid_is_gid {
            old_gids[usize::from(new)]
        } else {
            new
        }
    };

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let cid_font = Ref::new(4);
    let descriptor = Ref::new(5);
    let file = Ref::new(6);
    let to_unicode = Ref::new(7);
    let info = Ref::new(8);
    let first_page = 9;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first_page + 2 * i as i32))
        .collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(pages.len() as i32);

    let face = typeface.face;
    let scale = |v: i16| f32::from(v) * 1000.0 / f32::from(face.units_per_em());
    let system = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    pdf.type0_font(font)
        .base_font(FONT_NAME)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_font)
        .to_unicode(to_unicode);
    let mut cids = pdf.cid_font(cid_font);
    cids.subtype(CidFontType::Type2)
        .base_font(FONT_NAME)
        .system_info(system)
        .font_descriptor(descriptor)
        .default_width(0.0);
    if cid_is_gid {
        cids.cid_to_gid_map_predefined(Name(b"Identity"));
        let mut widths = cids.widths();
        for old in &old_gids {
            widths.consecutive(*old, [typeface.advance(GlyphId(*old))]);
        }
        widths.finish();
    } else {
        cids.cid_to_gid_map_predefined(Name(b"Identity"));
        cids.widths()
            .consecutive(0, old_gids.iter().map(|g| typeface.advance(GlyphId(*g))));
    }
    cids.finish();
    let bbox = face.global_bounding_box();
    pdf.font_descriptor(descriptor)
        .name(FONT_NAME)
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(
            scale(bbox.x_min),
            scale(bbox.y_min),
            scale(bbox.x_max),
            scale(bbox.y_max),
        ))
        .italic_angle(0.0)
        .ascent(scale(face.ascender()))
        .descent(scale(face.descender()))
        .cap_height(scale(face.capital_height().unwrap_or(face.ascender())))
        .stem_v(80.0)
        .font_file2(file);
    pdf.stream(file, &font_file)
        .pair(Name(b"Length1"), font_file.len() as i32);
    let mut map = UnicodeCmap::new(Name(b"Orders-UTF16"), system);
    for (new, c) in &glyphs.chars {
        map.pair(cid(*new), *c);
    }
    pdf.cmap(to_unicode, &map.finish());

    pdf.document_info(info)
        .title(TextStr(title))
        .producer(TextStr("Orders"));
    for (page, id) in pages.iter().zip(&page_ids) {
        let contents = Ref::new(id.get() + 1);
        let mut writer = pdf.page(*id);
        writer
            .media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1))
            .parent(tree)
            .contents(contents);
        let mut resources = writer.resources();
        // One font under both names: bold is a drawing mode, not a second file.
        resources.fonts().pair(REGULAR, font).pair(BOLD, font);
        resources.finish();
        writer.finish();
        let mut content = Content::new();
        for mark in &page.marks {
            match mark {
                Mark::Text {
                    font,
                    size,
                    x,
                    y,
                    text,
                } => {
                    let shown: Vec<u8> = if cid_is_gid {
                        text.chars()
                            .map(|c| glyphs.of_char.get(&c).map_or(0, |n| cid(*n)))
                            .flat_map(u16::to_be_bytes)
                            .collect()
                    } else {
                        glyphs.encode(text)
                    };
                    content.begin_text();
                    if *font == BOLD {
                        content
                            .set_text_rendering_mode(TextRenderingMode::FillStroke)
                            .set_line_width(0.3);
                    } else {
                        content.set_text_rendering_mode(TextRenderingMode::Fill);
                    }
                    content
                        .set_font(*font, *size)
                        .next_line(*x, *y)
                        .show(Str(&shown))
                        .end_text();
                }
                Mark::Rule { y } => {
                    content
                        .set_line_width(0.5)
                        .move_to(LEFT, *y)
                        .line_to(RIGHT, *y)
                        .stroke();
                }
            }
        }
        pdf.stream(contents, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn font() -> PdfFont {
        PdfFont::load(Path::new(SOURCE_FONT)).expect("fonts/DejaVuSans.ttf")
    }

    #[test]
    fn the_font_prints_latin_greek_and_cyrillic_and_replaces_the_rest() {
        let font = font();
        for c in "Łukasz Gößling Őr Ğ ł ő ğ ß Ελένη Юлия €".chars() {
            assert_eq!(font.printed(c).0, c, "{c}");
        }
        assert_eq!(font.printed('日').0, REPLACEMENT);
        assert_ne!(
            font.printed('日').1,
            GlyphId(0),
            "the replacement is a visible glyph"
        );
        assert!(font.width("Ελένη", 10.0, REGULAR) > font.width("Ε", 10.0, REGULAR));
    }

    #[test]
    fn the_font_is_read_once_per_path_and_a_missing_or_broken_one_is_named() {
        assert!(std::ptr::eq(font().file, font().file));
        let missing = PdfFont::load(Path::new("/nonexistent/DejaVuSans.ttf")).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/DejaVuSans.ttf"),
            "{missing}"
        );
        let license = Path::new(SOURCE_FONT).with_file_name("LICENSE");
        let broken = PdfFont::load(&license).unwrap_err();
        assert!(matches!(broken, FontError::NotAFont { .. }), "{broken}");
    }
}
