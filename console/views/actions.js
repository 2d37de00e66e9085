// What an operator can do to an order, each behind the confirmation dialog. Every
// request carries the order's version as If-Match and an Idempotency-Key made when the
// dialog opens (so pressing Confirm again after a network failure cannot act twice).
// Actions are offered only to the roles the API lets take them.

import { ifMatch, newIdempotencyKey, orderPath, routeMissing } from '../api.js';
import { field, openDialog } from '../dialog.js';
import { h } from '../dom.js';
import { FormProblem, fromMinor, money, toMinor } from '../format.js';

/** Set once POST …/shipments answered "no such route": this API ships whole orders only. */
let shipmentsMissing = false;

function reasonField(label = 'Reason (optional)') {
  return field(label, h('input', { name: 'reason', autocomplete: 'off', maxlength: '500' }),
    'Kept in the order\'s history.');
}

function reasonOf(form) {
  const reason = form.elements.reason?.value.trim();
  return reason || undefined;
}

function isStale(error) {
  return error?.status === 412;
}

/** The quantities each line still has to ship. */
function unshipped(order) {
  return (order.items ?? []).map((item) => ({
    item,
    remaining: Math.max(0, (item.quantity ?? 0) - (item.quantity_shipped ?? 0)),
  }));
}

/** What remains refundable: received less refunds made, in minor units (or null). */
export function refundable(order) {
  const payment = order.payment;
  if (!payment) return null;
  const received = toMinor(payment.amount_received ?? order.total, order.currency);
  if (received === null) return null;
  const refunded = (payment.refunds ?? [])
    .reduce((sum, refund) => sum + (toMinor(refund.amount, order.currency) ?? 0n), 0n);
  return received - refunded;
}

/**
 * The action buttons for this order and this operator. `done(message)` after a success
 * (the page reloads); `stale(error)` after a 412 (the page reloads and says why).
 */
export function orderActions(order, { api, session }, { done, stale }) {
  const id = order.order_id;
  const version = ifMatch(order.version);
  const staff = session.admin || session.fulfill;
  const owner = !staff && session.subject === order.user_id;
  const buttons = [];
  const common = { stopOn: isStale, afterStop: stale };

  const moveTo = (status, title, label, description, success) => buttons.push(
    h('button', {
      type: 'button',
      onclick: () => {
        const key = newIdempotencyKey();
        openDialog({
          title,
          body: [h('p', {}, description), reasonField()],
          ...common,
          onConfirm: async (form) => {
            await api.request('PUT', orderPath(id, '/status'), {
              body: { status, reason: reasonOf(form) },
              ifMatch: version,
              idempotencyKey: key,
            });
            done(success);
          },
        });
      },
    }, label));

  if (session.admin && order.status === 'pending') {
    moveTo('confirmed', `Confirm order ${id}`, 'Confirm order',
      'Marks the order confirmed (payment received another way, or checked by hand).',
      `Order ${id} confirmed.`);
  }
  if (staff && order.status === 'confirmed') {
    buttons.push(h('button', { type: 'button', onclick: () => shipDialog(order, api, common, done) }, 'Ship…'));
  }
  if (staff && order.status === 'shipped') {
    moveTo('delivered', `Mark order ${id} delivered`, 'Mark delivered',
      'Records the delivery (for carriers that do not report it).', `Order ${id} marked delivered.`);
  }
  const cancellable = (session.admin && ['pending', 'confirmed'].includes(order.status))
    || (owner && order.status === 'pending');
  if (cancellable) {
    buttons.push(h('button', {
      type: 'button',
      class: 'danger',
      onclick: () => {
        const key = newIdempotencyKey();
        openDialog({
          title: `Cancel order ${id}`,
          body: [
            h('p', {}, 'The order is kept, with status cancelled. A paid order is refunded in full.'),
            reasonField(),
          ],
          ...common,
          onConfirm: async (form) => {
            const reason = reasonOf(form);
            await api.request('DELETE', orderPath(id), {
              body: reason ? { reason } : undefined,
              ifMatch: version,
              idempotencyKey: key,
            });
            done(`Order ${id} cancelled.`);
          },
        });
      },
    }, 'Cancel order'));
  }
  const left = refundable(order);
  if (session.admin && left !== null && left > 0n
    && ['paid', 'partially_refunded'].includes(order.payment_status)) {
    buttons.push(h('button', { type: 'button', onclick: () => refundDialog(order, left, api, common, done) }, 'Refund…'));
  }
  return buttons;
}

function shipDialog(order, api, common, done) {
  const id = order.order_id;
  const key = newIdempotencyKey();
  const lines = unshipped(order).filter((line) => line.remaining > 0);
  const quantities = lines.map(({ item, remaining }) => field(
    `Quantity of ${item.name ?? item.product_id} (${item.product_id})`,
    h('input', {
      name: `qty-${item.product_id}`, type: 'number', min: '0', max: String(remaining),
      value: String(remaining), inputmode: 'numeric', 'data-product': item.product_id,
    }),
    `${remaining} not shipped yet`));
  const body = [
    h('p', {}, shipmentsMissing
      ? 'This API ships whole orders only: every line goes in one parcel.'
      : 'Ship every line or part of them. Leave the tracking number empty to buy a label (when the API buys labels).'),
    h('fieldset', {}, h('legend', {}, 'Lines'), quantities),
    field('Carrier (optional)', h('input', { name: 'carrier', autocomplete: 'off', placeholder: 'usps' })),
    field('Tracking number (optional)', h('input', { name: 'tracking_number', autocomplete: 'off' })),
    field('Service level (optional)', h('input', { name: 'servicelevel', autocomplete: 'off', placeholder: 'usps_priority' })),
  ];
  openDialog({
    title: `Ship order ${id}`,
    body,
    ...common,
    onConfirm: async (form) => {
      const items = [];
      let partial = false;
      for (const { item, remaining } of lines) {
        const input = form.elements[`qty-${item.product_id}`];
        const quantity = Number(input.value);
        if (!Number.isInteger(quantity) || quantity < 0 || quantity > remaining) {
          throw new FormProblem(`The quantity of ${item.name ?? item.product_id} must be a whole number from 0 to ${remaining}.`);
        }
        if (quantity < remaining) partial = true;
        if (quantity > 0) items.push({ product_id: item.product_id, quantity });
      }
      if (!items.length) throw new FormProblem('Choose at least one line to ship.');
      const text = (name) => form.elements[name].value.trim() || undefined;
      const carrier = text('carrier');
      const trackingNumber = text('tracking_number');
      const servicelevel = text('servicelevel');
      if (!shipmentsMissing) {
        try {
          await api.request('POST', orderPath(id, '/shipments'), {
            body: { items, carrier, tracking_number: trackingNumber, servicelevel },
            ifMatch: ifMatch(order.version),
            idempotencyKey: key,
          });
          done(partial ? `Part of order ${id} shipped.` : `Order ${id} shipped.`);
          return;
        } catch (error) {
          if (!routeMissing(error)) throw error;
          shipmentsMissing = true;
        }
      }
      if (partial) {
        throw new FormProblem('This API cannot ship part of an order: it has no shipments endpoint. '
          + 'Ship every line in one parcel instead.');
      }
      await api.request('PUT', orderPath(id, '/status'), {
        body: { status: 'shipped', carrier, tracking_number: trackingNumber },
        ifMatch: ifMatch(order.version),
        idempotencyKey: key,
      });
      done(`Order ${id} shipped.`);
    },
  });
}

function refundDialog(order, left, api, common, done) {
  const id = order.order_id;
  const key = newIdempotencyKey();
  const currency = order.currency;
  const amount = h('input', {
    name: 'amount', inputmode: 'decimal', autocomplete: 'off', value: fromMinor(left, currency),
  });
  openDialog({
    title: `Refund order ${id}`,
    body: [
      h('p', {}, `Gives money back to the customer's card. Up to ${money(fromMinor(left, currency), currency)} remains refundable.`),
      field(`Amount (${currency})`, amount, `At most ${fromMinor(left, currency)}.`),
      reasonField(),
    ],
    ...common,
    onConfirm: async (form) => {
      const value = amount.value.trim();
      if (toMinor(value, currency) === null) {
        throw new FormProblem(`The amount must be a number like ${fromMinor(left, currency)}.`);
      }
      await api.request('POST', orderPath(id, '/refunds'), {
        body: { amount: value, reason: reasonOf(form) },
        ifMatch: ifMatch(order.version),
        idempotencyKey: key,
      });
      done(`Refunded ${money(value, currency)} on order ${id}.`);
    },
  });
}

/** The buttons for one return (the returns issue's routes), by its status and the role. */
export function returnActions(order, ret, { api, session }, { done, stale }) {
  const id = order.order_id;
  const path = (step) => orderPath(id, `/returns/${encodeURIComponent(ret.return_id)}/${step}`);
  const common = { stopOn: isStale, afterStop: stale };
  const step = (label, title, body, makeBody, success) => h('button', {
    type: 'button',
    onclick: () => {
      const key = newIdempotencyKey();
      openDialog({
        title,
        body,
        ...common,
        onConfirm: async (form) => {
          await api.request('POST', path(label.toLowerCase()), {
            body: makeBody(form),
            ifMatch: ifMatch(order.version),
            idempotencyKey: key,
          });
          done(success);
        },
      });
    },
  }, label);
  const buttons = [];
  if (session.admin && ret.status === 'requested') {
    buttons.push(step('Approve', `Approve return ${ret.return_id}`,
      [h('p', {}, 'The customer may send the items back.'),
        field('Buy a return label', h('input', { name: 'label', type: 'checkbox', checked: true }))],
      (form) => ({ label: form.elements.label.checked }), `Return ${ret.return_id} approved.`));
    buttons.push(step('Decline', `Decline return ${ret.return_id}`,
      [reasonField('Reason (told to the customer)')],
      (form) => {
        const reason = reasonOf(form);
        if (!reason) throw new FormProblem('Say why the return is declined.');
        return { reason };
      }, `Return ${ret.return_id} declined.`));
  }
  if ((session.admin || session.fulfill) && ret.status === 'approved') {
    buttons.push(step('Receive', `Receive return ${ret.return_id}`,
      [h('p', {}, 'Every item of the return came back; it goes back to stock.'),
        field('Refund the returned lines now', h('input', { name: 'refund', type: 'checkbox', checked: true }))],
      (form) => ({ refund: form.elements.refund.checked }), `Return ${ret.return_id} received.`));
  }
  return buttons;
}

