// Small DOM helpers: build elements from a tag, attributes and children.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h('button', {class: 'primary', onclick: fn}, 'Save') → <button class="primary">Save</button>.
// Attributes: `class`, `dataset` (object), `on<event>` (listener), `text`, booleans (present
// when true), everything else as an attribute. Children: nodes, strings, arrays, null (skipped).
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// The same for SVG elements.
export function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'text') {
      el.textContent = value;
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'value' && 'value' in el && !(el instanceof SVGElement)) {
      el.value = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// Removes every child of `el` and appends `children`.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A short-lived message at the bottom of the page.
export function toast(message, kind = 'info') {
  const host = document.getElementById('toasts');
  if (!host) return;
  const note = h('div', { class: `toast toast-${kind}` }, message);
  host.append(note);
  setTimeout(() => note.classList.add('leaving'), 3600);
  setTimeout(() => note.remove(), 4000);
}

// Line icons (24 × 24, drawn with the current text colour).
const ICONS = {
  plus: 'M12 5v14M5 12h14',
  pencil: 'M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4',
  trash: 'M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6',
  layout: 'M4 4h16v16H4zM4 10h16M10 10v10',
  sun: 'M12 8a4 4 0 1 0 0 8a4 4 0 1 0 0-8zM12 2v2M12 20v2M2 12h2M20 12h2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4',
  moon: 'M20 14.5A8 8 0 1 1 9.5 4a6.5 6.5 0 0 0 10.5 10.5z',
  auto: 'M3 5h18v11H3zM8 20h8M12 16v4',
  refresh: 'M20 12a8 8 0 1 1-2.3-5.6M20 4v5h-5',
  back: 'M15 5l-7 7 7 7',
  board: 'M4 4h7v9H4zM13 4h7v5h-7zM13 11h7v9h-7zM4 15h7v5H4z',
  key: 'M7.5 12a3.5 3.5 0 1 0 0 7a3.5 3.5 0 1 0 0-7zM10 13L20 3M16 7l3 3M13.5 9.5l2 2',
};

export function icon(name) {
  return s('svg', { class: 'icon', viewBox: '0 0 24 24', 'aria-hidden': 'true' },
    s('path', { d: ICONS[name] || '' }));
}
