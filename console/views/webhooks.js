// Webhook subscriptions (admins): listed, created (the secret shown once), deleted, and
// each one's recent deliveries with their outcome and attempts.

import { SessionEnded, newIdempotencyKey } from '../api.js';
import { field, openDialog, problemBlock } from '../dialog.js';
import { clear, h, table } from '../dom.js';
import { FormProblem, when } from '../format.js';

/** The event types a subscription can ask for (`*`: every type, later ones included). */
const EVENT_TYPES = [
  'order.created', 'order.confirmed', 'order.shipped', 'order.delivered', 'order.cancelled',
  'order.payment_status_changed', 'order.shipping_status_changed',
];

function time(timestamp) {
  return h('time', { datetime: timestamp ?? '' }, when(timestamp));
}

export async function showWebhooks(view, { api, announce }) {
  const list = h('div', {}, h('p', {}, 'Loading subscriptions…'));
  const deliveries = h('div', { id: 'deliveries' });
  const secretBox = h('div', { id: 'secret' });

  const url = h('input', { name: 'url', type: 'url', autocomplete: 'off', required: true, placeholder: 'https://erp.example.com/hooks/orders' });
  const description = h('input', { name: 'description', autocomplete: 'off', maxlength: '200' });
  const everything = h('input', { type: 'checkbox', name: 'all_events', id: 'event-all' });
  const boxes = EVENT_TYPES.map((type) => h('input', { type: 'checkbox', name: 'events', value: type, id: `event-${type}` }));
  const create = h('form', { class: 'create-webhook', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, 'New subscription'),
    field('Receiver URL', url),
    h('fieldset', {}, h('legend', {}, 'Events'),
      h('div', { class: 'check' }, everything, h('label', { for: 'event-all' }, 'Every event (*)')),
      boxes.map((box) => h('div', { class: 'check' }, box, h('label', { for: box.id }, box.value)))),
    field('Description (optional)', description),
    h('button', { type: 'submit', class: 'primary' }, 'Create subscription'),
    h('div', { class: 'form-problem' }));
  create.addEventListener('submit', async (event) => {
    event.preventDefault();
    const problem = create.querySelector('.form-problem');
    clear(problem);
    clear(secretBox);
    const events = everything.checked ? ['*'] : boxes.filter((b) => b.checked).map((b) => b.value);
    try {
      if (!url.value.trim()) throw new FormProblem('Give the receiver\'s URL.');
      if (!events.length) throw new FormProblem('Choose at least one event.');
      const { body } = await api.request('POST', '/api/webhooks', {
        body: { url: url.value.trim(), events, description: description.value.trim() || undefined },
        idempotencyKey: newIdempotencyKey(),
      });
      create.reset();
      clear(secretBox, h('div', { class: 'secret', role: 'alert' },
        h('h2', {}, 'Signing secret'),
        h('p', {}, `Subscription ${body.id} created. Copy its secret into the receiver now: it is shown this once and never again.`),
        h('code', { class: 'secret-value' }, body.secret ?? '')));
      await refresh();
    } catch (error) {
      if (error instanceof SessionEnded) return;
      clear(problem, problemBlock(error));
    }
  });

  async function showDeliveries(hook, cursor) {
    clear(deliveries, h('p', {}, 'Loading deliveries…'));
    const query = new URLSearchParams({ limit: '20' });
    if (cursor) query.set('cursor', cursor);
    try {
      const { body } = await api.get(`/api/webhooks/${encodeURIComponent(hook.id)}/deliveries?${query}`);
      const rows = (body.deliveries ?? []).map((d) => [
        d.event_id ?? '', d.type ?? '', String(d.attempt ?? ''), time(d.at), d.outcome ?? '',
        d.status_code === null || d.status_code === undefined ? '' : String(d.status_code),
        d.duration_ms === undefined ? '' : `${d.duration_ms} ms`, d.error ?? '',
      ]);
      clear(deliveries,
        h('h2', { id: 'deliveries-title' }, `Deliveries to ${hook.url}`),
        rows.length
          ? table('Recent deliveries, newest first', ['Event', 'Type', 'Attempt', 'When', 'Outcome', 'HTTP status', 'Took', 'Error'], rows)
          : h('p', {}, 'No deliveries yet.'),
        body.next_cursor
          ? h('button', { type: 'button', onclick: () => showDeliveries(hook, body.next_cursor) }, 'Older deliveries')
          : null);
    } catch (error) {
      if (!(error instanceof SessionEnded)) clear(deliveries, problemBlock(error));
    }
  }

  function remove(hook) {
    openDialog({
      title: `Delete subscription ${hook.id}`,
      body: [h('p', {}, `Deliveries to ${hook.url} stop. This cannot be undone.`)],
      onConfirm: async () => {
        await api.request('DELETE', `/api/webhooks/${encodeURIComponent(hook.id)}`, { idempotencyKey: newIdempotencyKey() });
        announce(`Subscription ${hook.id} deleted.`, 'ok');
        clear(deliveries);
        await refresh();
      },
    });
  }

  async function refresh() {
    let hooks;
    try {
      hooks = (await api.get('/api/webhooks')).body?.webhooks ?? [];
    } catch (error) {
      if (error instanceof SessionEnded) throw error;
      clear(list, problemBlock(error));
      return;
    }
    clear(list, hooks.length
      ? table('Subscriptions, newest first', ['Receiver', 'Events', 'Description', 'State', 'Created', 'Actions'],
        hooks.map((hook) => [
          hook.url ?? '',
          (hook.events ?? []).join(', '),
          hook.description ?? '',
          hook.enabled === false ? `disabled${hook.disabled_reason ? `: ${hook.disabled_reason}` : ''}` : 'enabled',
          time(hook.created_at),
          h('span', { class: 'row-actions' },
            h('button', { type: 'button', 'aria-label': `Deliveries of ${hook.id}`, onclick: () => showDeliveries(hook) }, 'Deliveries'),
            h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${hook.id}`, onclick: () => remove(hook) }, 'Delete')),
        ]), { class: 'webhooks' })
      : h('p', {}, 'No subscriptions yet.'));
  }

  clear(view, h('h1', {}, 'Webhooks'), secretBox, list, deliveries, create);
  await refresh();
  return null;
}
