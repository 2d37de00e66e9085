// The orders table: newest first, filters, cursor paging, and a search box that opens
// an order by its id.

import { SessionEnded } from '../api.js';
import { clear, h, screenLink, table } from '../dom.js';
import { money, when, words } from '../format.js';
import { problemBlock } from '../dialog.js';

const STATUSES = ['pending', 'confirmed', 'shipped', 'delivered', 'cancelled'];
const FILTERS = ['status', 'user_id', 'created_after', 'created_before'];

/** `#/orders?…` with these parameters (empty ones left out). */
function ordersHash(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
  const text = query.toString();
  return `#/orders${text ? `?${text}` : ''}`;
}

/** A date field's day as the API's bound: the start of the day (after) or its end (before). */
function dayBound(day, end) {
  if (!day) return '';
  return end ? `${day}T23:59:59.999Z` : `${day}T00:00:00Z`;
}

export async function showOrders(view, { api, session }, params) {
  const current = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) ?? '']));
  const cursor = params.get('cursor') ?? '';
  // The cursors of the pages before this one, so "Previous page" can go back.
  const previous = (params.get('back') ?? '').split(',').filter(Boolean);

  const search = h('input', { id: 'order-search', name: 'order_id', autocomplete: 'off', placeholder: 'ORD…' });
  const searchForm = h('form', { class: 'search', role: 'search', 'aria-label': 'Open an order' },
    h('label', { for: 'order-search' }, 'Order id'),
    search,
    h('button', { type: 'submit' }, 'Open order'));
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = search.value.trim();
    if (id) window.location.hash = `#/orders/${encodeURIComponent(id)}`;
  });

  const status = h('select', { id: 'filter-status', name: 'status' },
    h('option', { value: '' }, 'Any status'),
    STATUSES.map((s) => h('option', { value: s, selected: s === current.status }, words(s))));
  const customer = h('input', { id: 'filter-customer', name: 'user_id', value: current.user_id, autocomplete: 'off' });
  const after = h('input', { id: 'filter-after', name: 'created_after', type: 'date', value: current.created_after.slice(0, 10) });
  const before = h('input', { id: 'filter-before', name: 'created_before', type: 'date', value: current.created_before.slice(0, 10) });
  const filterForm = h('form', { class: 'filters', 'aria-label': 'Filter orders' },
    h('div', { class: 'field' }, h('label', { for: 'filter-status' }, 'Status'), status),
    session.admin
      ? h('div', { class: 'field' }, h('label', { for: 'filter-customer' }, 'Customer (user id)'), customer)
      : null,
    h('div', { class: 'field' }, h('label', { for: 'filter-after' }, 'Created from'), after),
    h('div', { class: 'field' }, h('label', { for: 'filter-before' }, 'Created until'), before),
    h('button', { type: 'submit' }, 'Apply filters'),
    h('a', { href: '#/orders', class: 'button-link' }, 'Clear'));
  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    window.location.hash = ordersHash({
      status: status.value,
      user_id: session.admin ? customer.value.trim() : '',
      created_after: dayBound(after.value, false),
      created_before: dayBound(before.value, true),
    });
  });

  const results = h('div', { class: 'results' }, h('p', {}, 'Loading orders…'));
  clear(view, h('h1', {}, 'Orders'), searchForm, filterForm, results);

  const query = new URLSearchParams({ limit: '20' });
  for (const name of FILTERS) if (current[name]) query.set(name, current[name]);
  if (cursor) query.set('cursor', cursor);
  let page;
  try {
    page = (await api.get(`/api/orders?${query}`)).body ?? {};
  } catch (error) {
    if (error instanceof SessionEnded) throw error;
    clear(results, problemBlock(error));
    return null;
  }
  const orders = Array.isArray(page.orders) ? page.orders : [];
  const rows = orders.map((order) => [
    screenLink(`/orders/${encodeURIComponent(order.order_id)}`, order.order_id),
    h('time', { datetime: order.created_at ?? '' }, when(order.created_at)),
    order.user_id ?? '',
    h('span', { class: `badge status-${order.status}` }, words(order.status)),
    words(order.payment_status),
    words(order.shipping_status),
    h('span', { class: 'amount' }, money(order.total, order.currency)),
  ]);
  const paging = h('nav', { class: 'paging', 'aria-label': 'Pages' },
    cursor
      ? h('a', {
        href: ordersHash({ ...current, cursor: previous.at(-1) ?? '', back: previous.slice(0, -1).join(',') }),
      }, 'Previous page')
      : null,
    page.next_cursor
      ? h('a', {
        href: ordersHash({ ...current, cursor: page.next_cursor, back: [...previous, cursor].filter(Boolean).join(',') }),
      }, 'Next page')
      : null);
  clear(results,
    orders.length
      ? table('Orders, newest first', ['Order', 'Created', 'Customer', 'Status', 'Payment', 'Shipping', 'Total'], rows, { class: 'orders' })
      : h('p', {}, 'No orders match these filters.'),
    paging);
  return null;
}
