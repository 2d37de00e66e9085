// Building the page. Every value (from the API or typed by the operator) enters the page
// as a text node or an attribute value, never as markup: no innerHTML anywhere, so a
// product named `<img src=x onerror=alert(1)>` shows as those characters.

/** An element with attributes (on… names add listeners) and children (nodes or text). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      element.className = value;
    } else if (value === true) {
      element.setAttribute(name, '');
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** `value` as a link target only when it is an http(s) URL (never `javascript:`). */
export function safeUrl(value) {
  if (typeof value !== 'string') return null;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

/** A link to another site (a carrier's tracking page, a label), or just the text. */
export function externalLink(url, text) {
  const href = safeUrl(url);
  return href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text) : text;
}

/** The console's own link to a screen (`#/orders/ORD…`); ids are encoded. */
export function screenLink(path, text) {
  return h('a', { href: `#${path}` }, text);
}

/** A definition list from [term, value] pairs, leaving out absent values. */
export function facts(pairs, attributes = {}) {
  return h('dl', { class: 'facts', ...attributes },
    pairs.filter(([, value]) => value !== undefined && value !== null && value !== '')
      .map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, value))));
}

/** A table with a caption, column headers and rows of cells. */
export function table(caption, headers, rows, attributes = {}) {
  return h('table', attributes,
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((header) => h('th', { scope: 'col' }, header)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell) => h('td', {}, cell))))));
}
