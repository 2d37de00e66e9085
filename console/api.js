// The Orders API, as any client calls it: same origin, bearer token, JSON; failures as
// RFC 9457 problem details.

/** A non-2xx answer, with its problem document. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
    this.retryAfter = retryAfter;
  }

  get code() {
    return this.problem.code;
  }
}

/** The session ended (expired, or the API no longer takes the token). */
export class SessionEnded extends Error {}

/** A fresh `Idempotency-Key`: one per action, reused when that action is retried. */
export function newIdempotencyKey() {
  return crypto.randomUUID();
}

/** `"3"`, the `If-Match` of an order at version 3. */
export function ifMatch(version) {
  return `"${version}"`;
}

/** Whether an answer says the route does not exist on this API (a feature not deployed). */
export function routeMissing(error) {
  if (!(error instanceof ApiError)) return false;
  if (error.status === 405) return true;
  return error.status === 404 && !['order_not_found', 'webhook_not_found', 'payments_off']
    .includes(error.code);
}

export class Api {
  /** `session`: the signed-in operator; `onSessionEnded(reason)` when it ends. */
  constructor(session, onSessionEnded) {
    this.session = session;
    this.onSessionEnded = onSessionEnded;
  }

  /**
   * Sends one request. Answers `{status, headers, body}` (the JSON, or a Blob for
   * `accept` other than JSON); throws ApiError on a problem, SessionEnded when the
   * token has expired or is refused.
   */
  async request(method, path, { body, ifMatch: version, idempotencyKey, accept } = {}) {
    if (this.session.expired()) {
      this.onSessionEnded('expired');
      throw new SessionEnded('session expired');
    }
    const headers = {
      Authorization: this.session.authorization(),
      Accept: accept ?? 'application/json',
    };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (version !== undefined) headers['If-Match'] = version;
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
    if (response.status === 401) {
      this.onSessionEnded('refused');
      throw new SessionEnded('token refused');
    }
    const type = response.headers.get('content-type') ?? '';
    if (!response.ok) {
      const problem = type.includes('json') ? await response.json().catch(() => ({})) : {};
      throw new ApiError(response.status, problem, response.headers.get('retry-after'));
    }
    let answer = null;
    if (accept && !accept.includes('json')) {
      answer = await response.blob();
    } else if (type.includes('json')) {
      answer = await response.json();
    }
    return { status: response.status, headers: response.headers, body: answer };
  }

  get(path, options) {
    return this.request('GET', path, options);
  }
}

/** `/api/orders/{id}…`, the id encoded. */
export function orderPath(orderId, rest = '') {
  return `/api/orders/${encodeURIComponent(orderId)}${rest}`;
}
