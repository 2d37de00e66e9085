// Who is signed in. The access token lives in this module's memory only: never in
// localStorage or sessionStorage, never in a URL, never logged. Reloading the page
// signs out. The session ends at the token's `exp`.
//
// Deployed, sign-in is Cognito's hosted UI with the authorization-code flow and PKCE
// (RFC 7636): the code verifier waits in sessionStorage during the round trip to the
// hosted UI (it is not a credential without the code) and is deleted on return.

const PKCE_KEY = 'orders-console-pkce';

/** The claims of a JWT (not verified here: the API verifies every request). */
export function claimsOf(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('an access token has three parts separated by dots');
  try {
    const json = new TextDecoder().decode(base64UrlDecode(parts[1]));
    const claims = JSON.parse(json);
    if (typeof claims !== 'object' || claims === null) throw new Error('not an object');
    return claims;
  } catch {
    throw new Error('its middle part is not readable JSON');
  }
}

function base64UrlDecode(text) {
  const base64 = text.replaceAll('-', '+').replaceAll('_', '/');
  const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '='));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function base64UrlEncode(bytes) {
  let binary = '';
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function randomText(bytes) {
  return base64UrlEncode(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** A signed-in operator: the token, who it names, its roles and when it ends. */
export class Session {
  #token;

  constructor(token, config) {
    const claims = claimsOf(token);
    if (typeof claims.exp !== 'number') throw new Error('it has no expiry (exp)');
    this.#token = token;
    this.subject = String(claims.sub ?? claims.username ?? '');
    this.expiresAt = new Date(claims.exp * 1000);
    const scopes = String(claims.scope ?? '').split(' ').filter(Boolean);
    this.admin = scopes.includes(config.admin_scope);
    this.fulfill = scopes.includes(config.fulfill_scope);
    if (this.expired()) throw new Error(`it expired at ${this.expiresAt.toLocaleString()}`);
  }

  expired() {
    return Date.now() >= this.expiresAt.getTime();
  }

  /** The `Authorization` header value. */
  authorization() {
    return `Bearer ${this.#token}`;
  }

  /** In words: `admin`, `fulfillment`, or `customer`. */
  role() {
    if (this.admin) return 'admin';
    if (this.fulfill) return 'fulfillment';
    return 'customer';
  }

  /** Forgets the token. */
  end() {
    this.#token = '';
  }
}

/** Off to Cognito's hosted UI (authorization code with PKCE). */
export async function startHostedSignIn(config) {
  const verifier = randomText(48);
  const state = randomText(24);
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
  const challenge = base64UrlEncode(
    await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const url = new URL(config.authorize_url);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: (config.scopes ?? []).join(' '),
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  window.location.assign(url.href);
}

/**
 * Back from the hosted UI: the code exchanged for an access token, the code taken out of
 * the address bar and history. `null` when this page load is not such a return.
 */
export async function finishHostedSignIn(config) {
  const params = new URLSearchParams(window.location.search);
  if (!params.has('code') && !params.has('error')) return null;
  window.history.replaceState(null, '', window.location.pathname + window.location.hash);
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) ?? 'null');
  sessionStorage.removeItem(PKCE_KEY);
  if (params.has('error')) {
    throw new Error(`Cognito refused the sign-in: ${params.get('error_description') || params.get('error')}`);
  }
  if (!saved || saved.state !== params.get('state')) {
    throw new Error('This sign-in answer does not belong to this tab; sign in again.');
  }
  const response = await fetch(config.token_url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: config.client_id,
      code: params.get('code'),
      redirect_uri: config.redirect_uri,
      code_verifier: saved.verifier,
    }),
    credentials: 'omit',
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || typeof body.access_token !== 'string') {
    throw new Error(`Cognito did not issue a token (${response.status} ${body.error ?? ''}); sign in again.`);
  }
  return body.access_token;
}

/** Where the browser goes to end the Cognito session too. */
export function hostedSignOutUrl(config) {
  if (!config.logout_url) return null;
  const url = new URL(config.logout_url);
  url.search = new URLSearchParams({
    client_id: config.client_id,
    logout_uri: config.redirect_uri,
  }).toString();
  return url.href;
}
