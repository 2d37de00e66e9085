// How values read: money with its currency's digits, times in the operator's zone,
// problems (RFC 9457) in words.

const ZERO_DIGITS = new Set(['CLP', 'ISK', 'JPY', 'KRW', 'VND']);
const THREE_DIGITS = new Set(['BHD', 'JOD', 'KWD', 'OMR', 'TND']);

/** The currency's minor digits, as the API writes its amounts. */
export function minorDigits(currency) {
  if (ZERO_DIGITS.has(currency)) return 0;
  if (THREE_DIGITS.has(currency)) return 3;
  return 2;
}

/** An amount as the API sends it (a JSON number or a decimal string) in minor units. */
export function toMinor(amount, currency) {
  if (amount === undefined || amount === null || amount === '') return null;
  const digits = minorDigits(currency);
  const text = typeof amount === 'number' ? amount.toFixed(digits) : String(amount).trim();
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return null;
  const fraction = (match[3] ?? '').padEnd(digits, '0').slice(0, digits);
  const minor = BigInt(match[2]) * 10n ** BigInt(digits) + BigInt(fraction || '0');
  return match[1] === '-' ? -minor : minor;
}

/** Minor units written with the currency's digits: `7500n` → `75.00`. */
export function fromMinor(minor, currency) {
  const digits = minorDigits(currency);
  const negative = minor < 0n;
  const text = (negative ? -minor : minor).toString().padStart(digits + 1, '0');
  const whole = digits ? text.slice(0, -digits) : text;
  const fraction = digits ? `.${text.slice(-digits)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** `75.00 USD`, or an empty string when there is no amount. */
export function money(amount, currency) {
  const minor = toMinor(amount, currency);
  if (minor === null) return amount === undefined || amount === null ? '' : String(amount);
  return `${fromMinor(minor, currency)} ${currency ?? ''}`.trim();
}

/** A timestamp in the operator's locale, with the zone. */
export function when(timestamp) {
  if (!timestamp) return '';
  const date = new Date(timestamp);
  if (Number.isNaN(date.getTime())) return String(timestamp);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** A `<time>`-ready pair: the machine value and the words. */
export function timeParts(timestamp) {
  return { datetime: timestamp ?? '', text: when(timestamp) };
}

/** `payment_status` → `payment status`, `partially_shipped` → `partially shipped`. */
export function words(value) {
  return value === undefined || value === null ? '' : String(value).replaceAll('_', ' ');
}

/** Something the operator can fix before anything is sent. */
export class FormProblem extends Error {}

/** An error from the API (or the network) in words: a title, a sentence, per-field notes. */
export function problemInWords(error) {
  const problem = error?.problem ?? {};
  const status = error?.status;
  if (error instanceof FormProblem) {
    return { title: 'Check the form', detail: error.message, errors: [] };
  }
  if (!status) {
    return {
      title: 'The request did not reach the API',
      detail: `${error?.message ?? error}. Check the connection and try again.`,
      errors: [],
    };
  }
  let detail = problem.detail || problem.title || `The API answered ${status}.`;
  switch (problem.code) {
    case 'version_mismatch':
      detail = 'This order changed since it was shown here'
        + (problem.current_status ? ` (it is now ${words(problem.current_status)})` : '')
        + '. It has been reloaded: check it, then try again.';
      break;
    case 'forbidden':
      detail = `${detail} Your role may not do this.`;
      break;
    default:
      break;
  }
  if (status === 429) {
    const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : ' Try again shortly.';
    detail = `${detail}${wait}`;
  } else if (status === 503) {
    detail = `${detail} The service is unavailable for a moment; try again shortly.`;
  }
  const title = `${problem.title || 'Request failed'} (${status}${problem.code ? `, ${problem.code}` : ''})`;
  const errors = Array.isArray(problem.errors)
    ? problem.errors.map((e) => `${e?.field ?? ''}: ${e?.message ?? ''}`)
    : [];
  return { title, detail, errors };
}
