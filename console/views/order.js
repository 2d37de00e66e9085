// One order: lines and money, payment and refunds, shipments, returns, documents, the
// history as a timeline, and the actions the operator's role may take. The page follows
// the order while it is open: it asks again with a growing pause while nothing changes
// (5 s up to 1 min), at once again after a change, and not while the tab is hidden or a
// dialog is open.

import { SessionEnded, orderPath, routeMissing } from '../api.js';
import { dialogOpen, problemBlock } from '../dialog.js';
import { clear, externalLink, facts, h, table } from '../dom.js';
import { fromMinor, money, problemInWords, toMinor, when, words } from '../format.js';
import { orderActions, refundable, returnActions } from './actions.js';

const FIRST_PAUSE = 5000;
const LONGEST_PAUSE = 60000;

/** The list a reply holds, whether it is the array itself or `{<name>: [...]}`. */
function listOf(body, name) {
  if (Array.isArray(body)) return body;
  if (body && Array.isArray(body[name])) return body[name];
  return [];
}

/** An optional read: `null` when the route (a feature not deployed) or the thing is absent. */
async function optional(api, path, options) {
  try {
    return (await api.get(path, options)).body;
  } catch (error) {
    if (error instanceof SessionEnded) throw error;
    if (routeMissing(error) || error.status === 404) return null;
    return { failed: error };
  }
}

function time(timestamp) {
  return h('time', { datetime: timestamp ?? '' }, when(timestamp));
}

function section(title, ...content) {
  const id = `s-${title.toLowerCase().replace(/[^a-z]+/g, '-')}`;
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), content);
}

function badge(kind, value) {
  return value ? h('span', { class: `badge ${kind}-${value}` }, words(value)) : null;
}

function address(a) {
  if (!a || typeof a !== 'object') return null;
  const line = [a.city, a.state, a.zip].filter(Boolean).join(' ');
  return h('span', { class: 'address' },
    [a.name, a.address, line, a.country].filter(Boolean).flatMap((part, i) => (i ? [h('br'), part] : [part])));
}

function linesTable(order) {
  const c = order.currency;
  const extra = (name) => (order.items ?? []).some((item) => item[name] !== undefined);
  const headers = ['Product', 'Product id', 'Quantity', 'Unit price'];
  if (extra('discount')) headers.push('Discount');
  if (extra('tax_lines')) headers.push('Taxes');
  headers.push('Line total');
  if (extra('quantity_shipped')) headers.push('Shipped');
  if (extra('quantity_delivered')) headers.push('Delivered');
  if (extra('quantity_returned')) headers.push('Returned');
  const rows = (order.items ?? []).map((item) => {
    const cells = [item.name ?? '', item.product_id ?? '', String(item.quantity ?? ''), money(item.price, c)];
    if (extra('discount')) cells.push(money(item.discount, c));
    if (extra('tax_lines')) {
      cells.push((item.tax_lines ?? []).map((t) => `${t.name ?? ''} ${t.rate ?? ''}: ${money(t.amount, c)}`).join('; '));
    }
    cells.push(money(item.total ?? lineTotal(item, c), c));
    if (extra('quantity_shipped')) cells.push(String(item.quantity_shipped ?? 0));
    if (extra('quantity_delivered')) cells.push(String(item.quantity_delivered ?? 0));
    if (extra('quantity_returned')) cells.push(String(item.quantity_returned ?? 0));
    return cells;
  });
  return table('Lines', headers, rows, { class: 'lines' });
}

function lineTotal(item, currency) {
  const unit = toMinor(item.price, currency);
  if (unit === null || !Number.isInteger(item.quantity)) return '';
  return fromMinor(unit * BigInt(item.quantity), currency);
}

function totals(order) {
  const c = order.currency;
  return facts([
    ['Subtotal', order.subtotal !== undefined ? money(order.subtotal, c) : null],
    ['Discounts', order.discount_total !== undefined ? `−${money(order.discount_total, c)}` : null],
    ['Discount codes', (order.discounts ?? []).map((d) => `${d.code ?? ''} ${money(d.amount, c)}`).join(', ')],
    ['Shipping', order.shipping_total !== undefined ? money(order.shipping_total, c) : null],
    ['Shipping method', order.shipping?.name ?? order.shipping?.method],
    ['Taxes', order.tax_total !== undefined
      ? `${money(order.tax_total, c)}${order.taxes_included ? ' (included)' : ''}` : null],
    ['Total', money(order.total, c)],
  ], { class: 'facts totals' });
}

function paymentSection(order) {
  const c = order.currency;
  const payment = order.payment;
  const left = refundable(order);
  const refunds = payment?.refunds ?? [];
  return section('Payment',
    facts([
      ['Payment status', badge('payment', order.payment_status)],
      ['Method', words(order.payment_method)],
      ['Provider', payment?.provider],
      ['Payment intent', payment?.intent_id],
      ['Received', payment?.amount_received !== undefined ? money(payment.amount_received, c) : null],
      ['Still refundable', left !== null && payment?.amount_received !== undefined
        ? money(fromMinor(left, c), c) : null],
      ['Problem', payment?.problem],
      ['Refund due (by hand)', order.refund_due !== undefined ? money(order.refund_due, c) : null],
    ]),
    refunds.length
      ? table('Refunds', ['Refund', 'Amount', 'Reason', 'When'],
        refunds.map((r) => [r.refund_id ?? '', money(r.amount, c), r.reason ?? '', time(r.at)]), { class: 'refunds' })
      : h('p', {}, 'No refunds.'));
}

function shipmentsSection(order, shipments) {
  const c = order.currency;
  const content = [];
  if (shipments.length) {
    content.push(table('Shipments', ['Shipment', 'Status', 'Items', 'Carrier', 'Tracking', 'Label', 'Created'],
      shipments.map((s) => [
        s.shipment_id ?? '',
        badge('shipment', s.status),
        (s.items ?? []).map((i) => `${i.quantity ?? ''} × ${i.product_id ?? ''}`).join(', '),
        [s.carrier, s.servicelevel].filter(Boolean).join(' · '),
        s.tracking_number ? externalLink(s.tracking_url, s.tracking_number) : '',
        s.label_url ? externalLink(s.label_url, `Label${s.cost ? ` (${money(s.cost.amount, s.cost.currency ?? c)})` : ''}`) : '',
        time(s.created_at),
      ]), { class: 'shipments' }));
  } else if (order.tracking_number || order.carrier) {
    content.push(facts([
      ['Carrier', order.carrier],
      ['Tracking number', order.tracking_number],
    ]));
  } else {
    content.push(h('p', {}, 'Nothing shipped yet.'));
  }
  return section('Shipments', facts([['Shipping status', badge('shipping', order.shipping_status)]]), content);
}

function returnsSection(order, returns, context, handlers) {
  if (!returns.length) return null;
  return section('Returns', table('Returns', ['Return', 'Status', 'Items', 'Label', 'Requested', 'Actions'],
    returns.map((r) => [
      r.return_id ?? '',
      badge('return', r.status),
      (r.items ?? []).map((i) => `${i.quantity ?? ''} × ${i.product_id ?? ''} (${words(i.reason)})`).join(', '),
      r.label_url ? externalLink(r.label_url, r.tracking_number ?? 'Label') : (r.tracking_number ?? ''),
      time(r.created_at),
      h('span', { class: 'row-actions' }, returnActions(order, r, context, handlers)),
    ]), { class: 'returns' }));
}

/** A link that fetches a PDF with the session's token and saves it. */
function pdfLink(api, path, text, fileName, status) {
  return h('a', {
    href: path,
    class: 'pdf',
    onclick: async (event) => {
      event.preventDefault();
      try {
        const { body } = await api.get(path, { accept: 'application/pdf' });
        const url = URL.createObjectURL(body);
        const save = h('a', { href: url, download: fileName });
        document.body.append(save);
        save.click();
        save.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (error) {
        if (!(error instanceof SessionEnded)) clear(status, problemBlock(error));
      }
    },
  }, text);
}

function documentsSection(order, invoice, creditNotes, api) {
  const status = h('div');
  const items = [];
  if (invoice && !invoice.failed) {
    const number = invoice.number ?? invoice.invoice_number ?? 'invoice';
    items.push(h('li', {}, pdfLink(api, orderPath(order.order_id, '/invoice'), `Invoice ${number} (PDF)`, `${number}.pdf`, status),
      invoice.issued_at ? [' issued ', time(invoice.issued_at)] : null));
  }
  for (const note of creditNotes) {
    if (!note?.number) continue;
    items.push(h('li', {}, pdfLink(api, orderPath(order.order_id, `/credit-notes/${encodeURIComponent(note.number)}`),
      `Credit note ${note.number} (PDF)`, `${note.number}.pdf`, status),
    note.total !== undefined ? ` for ${money(note.total, order.currency)}` : null));
  }
  return section('Documents', items.length ? h('ul', { class: 'documents' }, items) : h('p', {}, 'No invoice yet.'), status);
}

/** What a history entry did: a move, the creation, or a change beside the status. */
function headline(entry) {
  if (!entry.from) return `created as ${words(entry.to)}`;
  if (entry.from !== entry.to) return `${words(entry.from)} → ${words(entry.to)}`;
  return `${words(entry.to)}, updated`;
}

function timeline(history) {
  if (!history) return section('History', h('p', {}, 'The history could not be read.'));
  return section('History', h('ol', { class: 'timeline' }, history.map((entry) => h('li', {},
    h('div', { class: 'when' }, time(entry.at)),
    h('div', { class: 'what' },
      h('strong', {}, headline(entry)),
      ' by ', h('span', { class: 'actor' }, entry.actor ?? 'unknown'),
      entry.payment_status ? ` · payment ${words(entry.payment_status)}` : null,
      entry.shipping_status ? ` · shipping ${words(entry.shipping_status)}` : null),
    entry.reason ? h('div', { class: 'reason' }, `Reason: ${entry.reason}`) : null))));
}

export async function showOrder(view, context, orderId) {
  const { api, announce } = context;
  let version = null;
  let stopped = false;
  let timer = null;
  let pause = FIRST_PAUSE;

  async function load() {
    let order;
    try {
      order = (await api.get(orderPath(orderId))).body;
    } catch (error) {
      if (error instanceof SessionEnded) throw error;
      clear(view, h('h1', {}, `Order ${orderId}`), problemBlock(error),
        h('p', {}, h('a', { href: '#/orders' }, 'Back to the orders')));
      return false;
    }
    const [history, shipments, returns, invoice, creditNotes] = await Promise.all([
      optional(api, orderPath(orderId, '/history')),
      Array.isArray(order.shipments) ? order.shipments : optional(api, orderPath(orderId, '/shipments')),
      optional(api, orderPath(orderId, '/returns')),
      optional(api, orderPath(orderId, '/invoice')),
      optional(api, orderPath(orderId, '/credit-notes')),
    ]);
    version = order.version;
    const handlers = {
      done: (message) => {
        announce(message, 'ok');
        // After an action the pipeline usually moves the order again soon (stock
        // reserved, payment settled): look closely again.
        pause = FIRST_PAUSE;
        refresh();
      },
      stale: (error) => {
        announce(problemInWords(error).detail, 'warn');
        refresh();
      },
    };
    const actions = orderActions(order, context, handlers);
    clear(view,
      h('p', { class: 'crumbs' }, h('a', { href: '#/orders' }, 'Orders'), ' › ', order.order_id),
      h('h1', {}, `Order ${order.order_id}`),
      h('p', { class: 'badges' }, badge('status', order.status), ' ', badge('payment', order.payment_status), ' ',
        badge('shipping', order.shipping_status), order.return_status && order.return_status !== 'none'
          ? [' ', badge('return', order.return_status)] : null),
      actions.length ? h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, actions) : null,
      facts([
        ['Customer', order.user_id],
        ['Contact', [order.contact?.email, order.contact?.phone].filter(Boolean).join(', ')],
        ['Created', time(order.created_at)],
        ['Updated', time(order.updated_at)],
        ['Version', String(order.version ?? '')],
        ['Cart', order.cart_id],
        ['Ship to', address(order.shipping_address)],
      ]),
      section('Lines and money', linesTable(order), totals(order)),
      paymentSection(order),
      shipmentsSection(order, listOf(shipments, 'shipments')),
      returnsSection(order, listOf(returns, 'returns'), context, handlers),
      documentsSection(order, invoice, listOf(creditNotes, 'credit_notes'), api),
      timeline(history ? listOf(history, 'history') : null));
    return true;
  }

  async function refresh() {
    try {
      await load();
    } catch (error) {
      if (!(error instanceof SessionEnded)) announce(problemInWords(error).detail, 'warn');
    }
  }

  async function follow() {
    if (stopped) return;
    if (!document.hidden && !dialogOpen()) {
      try {
        const { body } = await api.get(orderPath(orderId));
        if (stopped) return;
        if (body.version !== version) {
          await load();
          announce(`Order ${orderId} changed: it is now ${words(body.status)}.`, 'info');
          pause = FIRST_PAUSE;
        } else {
          pause = Math.min(pause * 1.5, LONGEST_PAUSE);
        }
      } catch (error) {
        if (error instanceof SessionEnded) return;
        pause = Math.min(pause * 2, LONGEST_PAUSE);
      }
    }
    if (!stopped) timer = setTimeout(follow, pause);
  }

  if (await load()) timer = setTimeout(follow, pause);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
