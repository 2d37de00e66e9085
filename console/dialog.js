// Every action goes through one modal dialog with a "Confirm" button: the operator
// sees what is about to happen, fills in what it needs, and a failure is shown in
// words inside the dialog, which stays open to correct and retry.

import { clear, h } from './dom.js';
import { problemInWords } from './format.js';

/** The problem as a block of words, for a dialog or a page. */
export function problemBlock(error) {
  const { title, detail, errors } = problemInWords(error);
  return h('div', { class: 'problem', role: 'alert' },
    h('p', { class: 'problem-title' }, title),
    h('p', {}, detail),
    errors.length ? h('ul', {}, errors.map((e) => h('li', {}, e))) : null);
}

/**
 * Opens the dialog. `body`: nodes (fields included) shown above the buttons;
 * `onConfirm(form)` does the action: resolving closes the dialog, throwing shows the
 * problem, unless `stopOn(error)` says the dialog should close (a stale order, say), in
 * which case `afterStop(error)` runs.
 */
export function openDialog({ title, body = [], confirmLabel = 'Confirm', onConfirm, stopOn, afterStop }) {
  const dialog = document.getElementById('dialog');
  const problem = h('div', { class: 'dialog-problem' });
  const confirm = h('button', { type: 'submit', class: 'primary' }, confirmLabel);
  const close = h('button', { type: 'button', onclick: () => dialog.close() }, 'Close');
  const form = h('form', { method: 'dialog', novalidate: true },
    h('h2', { id: 'dialog-title' }, title),
    body,
    problem,
    h('div', { class: 'buttons' }, confirm, close));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    confirm.disabled = true;
    clear(problem);
    try {
      await onConfirm(form);
      dialog.close();
    } catch (error) {
      if (stopOn?.(error)) {
        dialog.close();
        afterStop?.(error);
      } else {
        clear(problem, problemBlock(error));
      }
    } finally {
      confirm.disabled = false;
    }
  });
  clear(dialog, form);
  dialog.showModal();
  const first = form.querySelector('input, select, textarea');
  (first ?? confirm).focus();
  return dialog;
}

/** Whether the dialog is open (the order page then holds its refresh). */
export function dialogOpen() {
  return document.getElementById('dialog').open;
}

/** A labelled field: `label`, then the control; hints are tied to it for screen readers. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  let hintNode = null;
  if (hint) {
    hintNode = h('span', { class: 'hint', id: `${id}-hint` }, hint);
    control.setAttribute('aria-describedby', `${id}-hint`);
  }
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintNode);
}
