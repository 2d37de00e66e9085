// The operator console: sign-in, then three screens behind the address bar's fragment
// (#/orders, #/orders/<id>, #/webhooks). It talks to the API as any client does.

import { Api, SessionEnded } from './api.js';
import { Session, finishHostedSignIn, hostedSignOutUrl } from './auth.js';
import { clear, h } from './dom.js';
import { problemBlock } from './dialog.js';
import { showSignIn } from './views/signin.js';
import { showOrders } from './views/orders.js';
import { showOrder } from './views/order.js';
import { showWebhooks } from './views/webhooks.js';

const view = document.getElementById('view');
const notice = document.getElementById('notice');

const state = {
  config: null,
  session: null,
  api: null,
  /** What the current screen left running (the order page's refresh). */
  leave: null,
  expiryTimer: null,
};

/** A short message in the live region (read out by screen readers). */
export function announce(text, kind = 'info') {
  clear(notice, text ? h('p', { class: `notice ${kind}` }, text) : null);
}

function signedIn(token) {
  const session = new Session(token, state.config);
  state.session = session;
  state.api = new Api(session, (why) => endSession(why));
  clearTimeout(state.expiryTimer);
  // setTimeout holds at most ~24.8 days; longer tokens are checked on every request too.
  const left = Math.min(session.expiresAt.getTime() - Date.now(), 2 ** 31 - 1);
  state.expiryTimer = setTimeout(() => endSession('expired'), left);
  renderSession();
  if (!window.location.hash.startsWith('#/')) window.location.hash = '#/orders';
  route();
}

function endSession(why) {
  if (!state.session) return;
  const at = state.session.expiresAt.toLocaleTimeString();
  state.session.end();
  state.session = null;
  state.api = null;
  clearTimeout(state.expiryTimer);
  leaveScreen();
  document.getElementById('dialog').close();
  renderSession();
  const message = {
    expired: `Your session ended at ${at}: the access token expired. Sign in again to go on.`,
    refused: 'The API no longer accepts this access token (401). Sign in again to go on.',
    signout: 'You signed out.',
  }[why] ?? 'Your session ended. Sign in again.';
  announce('');
  showSignIn(view, state.config, { message, onToken: signIn });
}

function signIn(token) {
  signedIn(token);
}

function signOut() {
  const hosted = state.config.sign_in === 'cognito' ? hostedSignOutUrl(state.config) : null;
  endSession('signout');
  if (hosted) window.location.assign(hosted);
}

function renderSession() {
  const box = document.getElementById('session');
  const nav = document.getElementById('nav');
  const session = state.session;
  nav.hidden = !session;
  document.getElementById('nav-webhooks').hidden = !session?.admin;
  if (!session) {
    clear(box);
    return;
  }
  clear(box,
    h('span', {}, 'Signed in as ', h('strong', {}, session.subject || '(no subject)'),
      ` (${session.role()}), until ${session.expiresAt.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' })}`),
    ' ',
    h('button', { type: 'button', onclick: signOut }, 'Sign out'));
}

function leaveScreen() {
  if (state.leave) state.leave();
  state.leave = null;
}

/** Shows the screen the fragment names. */
async function route() {
  if (!state.session) return;
  leaveScreen();
  const [path, query = ''] = window.location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query);
  const context = { api: state.api, session: state.session, config: state.config, announce };
  const orderMatch = /^\/orders\/([^/]+)$/.exec(path);
  try {
    if (orderMatch) {
      state.leave = await showOrder(view, context, decodeURIComponent(orderMatch[1]));
    } else if (path === '/webhooks' && state.session.admin) {
      state.leave = await showWebhooks(view, context);
    } else if (path === '/orders') {
      state.leave = await showOrders(view, context, params);
    } else {
      window.location.hash = '#/orders';
      return;
    }
  } catch (error) {
    if (error instanceof SessionEnded) return;
    clear(view, h('h1', {}, 'Something went wrong'), problemBlock(error));
  }
  document.getElementById('main').focus({ preventScroll: true });
}

async function start() {
  window.addEventListener('hashchange', () => {
    announce('');
    route();
  });
  try {
    const response = await fetch('/console/config.json', { cache: 'no-store' });
    state.config = await response.json();
  } catch {
    clear(view, h('h1', {}, 'Orders console'),
      h('p', { class: 'problem', role: 'alert' }, 'The console could not read its settings (/console/config.json). Reload the page.'));
    return;
  }
  let message = '';
  if (state.config.sign_in === 'cognito') {
    try {
      const token = await finishHostedSignIn(state.config);
      if (token) {
        signedIn(token);
        return;
      }
    } catch (error) {
      message = error.message;
    }
  }
  showSignIn(view, state.config, { message, onToken: signIn });
}

start();
