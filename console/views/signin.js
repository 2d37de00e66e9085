// Sign-in: locally (make dev) a pasted access token; deployed, Cognito's hosted UI.

import { Session, startHostedSignIn } from '../auth.js';
import { clear, h } from '../dom.js';

export function showSignIn(view, config, { message, onToken }) {
  const status = h('div', { role: 'alert', class: message ? 'notice warn' : '' }, message || '');
  if (config.sign_in === 'cognito') {
    clear(view,
      h('h1', {}, 'Sign in'),
      status,
      h('p', {}, 'Operators sign in with the shop\'s Cognito user pool.'),
      h('button', {
        type: 'button',
        class: 'primary',
        onclick: () => startHostedSignIn(config).catch((e) => clear(status, e.message)),
      }, 'Sign in'));
    return;
  }
  if (config.sign_in !== 'local') {
    clear(view,
      h('h1', {}, 'Sign-in is not set up'),
      status,
      h('p', {}, 'This deployment has no console app client. Deploy with CreateUserPool=true and '
        + 'ConsoleUrl set to this page\'s address (README, "Operator console").'));
    return;
  }
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-hint',
  });
  const form = h('form', { class: 'signin', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'token' }, 'Access token'),
      input,
      h('span', { class: 'hint', id: 'token-hint' },
        'Paste a token make dev printed (ADMIN_TOKEN for everything). It stays in this tab\'s memory only.')),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    input.value = '';
    if (!token) {
      clear(status, 'Paste an access token first.');
      status.className = 'notice warn';
      return;
    }
    try {
      // Read once to tell a typo from a token; the API checks the signature.
      new Session(token, config);
    } catch (error) {
      clear(status, `That is not a usable access token: ${error.message}.`);
      status.className = 'notice warn';
      input.focus();
      return;
    }
    onToken(token);
  });
  clear(view, h('h1', {}, 'Sign in'), status, form);
  input.focus();
}
