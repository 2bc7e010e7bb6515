// The page's entry point: routes between the dashboard list (#/) and one dashboard
// (#/dashboards/{id}), runs the theme switch, and offers to forget a saved access token.

import { h, icon, replace, toast } from './dom.js';
import { forgetToken, savedToken } from './api.js';
import { confirmAction } from './dialogs.js';
import { showHome } from './home.js';
import { showBoard } from './board.js';

const view = document.getElementById('view');
const crumbs = document.getElementById('crumbs');
let teardown = null;

function setCrumbs(items) {
  replace(crumbs, items.map((item, i) => [
    i > 0 ? h('span', { class: 'crumb-sep', 'aria-hidden': 'true' }, '/') : null,
    item.href ? h('a', { href: item.href }, item.label)
      : h('span', { 'aria-current': 'page' }, item.label),
  ]));
}

function route() {
  if (teardown) teardown();
  teardown = null;
  const match = location.hash.match(/^#\/dashboards\/([0-9a-fA-F-]{36})$/);
  teardown = match ? showBoard(view, match[1].toLowerCase(), { setCrumbs }) : showHome(view, { setCrumbs });
  view.focus({ preventScroll: true });
}

// Theme: auto (the system's) → light → dark → auto.
const THEMES = [
  { choice: 'auto', icon: 'auto', title: 'Theme: follows the system' },
  { choice: 'light', icon: 'sun', title: 'Theme: light' },
  { choice: 'dark', icon: 'moon', title: 'Theme: dark' },
];
const toggle = document.getElementById('theme-toggle');
const system = window.matchMedia('(prefers-color-scheme: dark)');

function applyTheme(choice) {
  const root = document.documentElement;
  root.dataset.themeChoice = choice;
  root.dataset.theme = choice === 'auto' ? (system.matches ? 'dark' : 'light') : choice;
  const theme = THEMES.find((t) => t.choice === choice) || THEMES[0];
  toggle.title = `${theme.title} (click to change)`;
  replace(toggle, icon(theme.icon), h('span', { class: 'sr-only' }, theme.title));
}

toggle.addEventListener('click', () => {
  const current = THEMES.findIndex((t) => t.choice === document.documentElement.dataset.themeChoice);
  const next = THEMES[(current + 1) % THEMES.length].choice;
  try { localStorage.setItem('flowboard.theme', next); } catch (err) { /* not saved */ }
  applyTheme(next);
});
system.addEventListener('change', () => applyTheme(document.documentElement.dataset.themeChoice || 'auto'));
applyTheme(document.documentElement.dataset.themeChoice || 'auto');

// A failure nothing else reported (boot.js records them in window.flowboardErrors too).
const report = (message) => toast(`Something went wrong: ${message}`, 'error');
window.addEventListener('error', (event) => report(event.message));
window.addEventListener('unhandledrejection', (event) => report((event.reason && event.reason.message) || event.reason));

// The key button: shown while a token is saved; forgets it, then starts the page over (which
// asks again if the server wants one).
const tokenButton = document.getElementById('token-button');
replace(tokenButton, icon('key'), h('span', { class: 'sr-only' }, 'Forget the access token'));
const showTokenButton = () => { tokenButton.hidden = savedToken() === ''; };
tokenButton.addEventListener('click', async () => {
  const done = await confirmAction({
    title: 'Forget the access token?',
    message: 'This browser will no longer send it; the page asks for one again when the server needs it.',
    confirm: 'Forget token',
    submit: async () => forgetToken(),
  });
  if (done) location.reload();
});
window.addEventListener('flowboard-token', showTokenButton);
showTokenButton();

window.addEventListener('hashchange', route);
route();
