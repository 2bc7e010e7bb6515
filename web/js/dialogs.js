// Modal dialogs built on <dialog>: ask for a name, confirm a destructive action, ask for an
// access token.

import { h } from './dom.js';

// Opens `dialog` modally; resolves with what `onSubmit` returns (null when cancelled). A
// thrown error keeps the dialog open and shows the message.
function run(dialog, onSubmit, error) {
  document.body.append(dialog);
  return new Promise((resolve) => {
    const form = dialog.querySelector('form');
    let done = false;
    const close = (result) => {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      resolve(result);
    };
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const submit = form.querySelector('[type=submit]');
      submit.disabled = true;
      error.textContent = '';
      try {
        close(await onSubmit());
      } catch (err) {
        error.textContent = err.message;
      } finally {
        submit.disabled = false;
      }
    });
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      close(null);
    });
    form.querySelectorAll('[data-cancel]').forEach((b) => b.addEventListener('click', () => close(null)));
    dialog.showModal();
  });
}

// Asks for a line of text. `submit(text)` does the work (and may throw); resolves with its
// result, or null when cancelled.
export function askText({ title, label, value = '', placeholder = '', confirm, submit }) {
  const input = h('input', {
    type: 'text', name: 'text', required: true, maxlength: 200, value, placeholder,
    autocomplete: 'off', spellcheck: 'false',
  });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const dialog = h('dialog', { class: 'dialog dialog-small' },
    h('form', { method: 'dialog' },
      h('h2', { class: 'dialog-title' }, title),
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input),
      error,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'button', 'data-cancel': true }, 'Cancel'),
        h('button', { type: 'submit', class: 'button primary' }, confirm))));
  const promise = run(dialog, () => submit(input.value.trim()), error);
  input.select();
  return promise;
}

// Asks to confirm; resolves true when confirmed (after `submit()` succeeded), else null.
export function confirmAction({ title, message, confirm, submit }) {
  const error = h('p', { class: 'form-error', role: 'alert' });
  const dialog = h('dialog', { class: 'dialog dialog-small' },
    h('form', { method: 'dialog' },
      h('h2', { class: 'dialog-title' }, title),
      h('p', { class: 'dialog-text' }, message),
      error,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'button', 'data-cancel': true }, 'Cancel'),
        h('button', { type: 'submit', class: 'button danger' }, confirm))));
  return run(dialog, async () => {
    await submit();
    return true;
  }, error);
}

// Asks for an access token, saying why (`reason`). Resolves with the token, or null when
// cancelled. The page keeps it in this browser (see api.js); the topbar offers to forget it.
export function askToken({ reason }) {
  const input = h('input', {
    type: 'password', name: 'token', required: true, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'paste the token',
  });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const dialog = h('dialog', { class: 'dialog dialog-small dialog-token' },
    h('form', { method: 'dialog' },
      h('h2', { class: 'dialog-title' }, 'Access token'),
      h('p', { class: 'dialog-text' }, reason),
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Token'), input),
      h('p', { class: 'field-hint' }, 'Kept in this browser until you forget it (the key button at the top).'),
      error,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'button', 'data-cancel': true }, 'Cancel'),
        h('button', { type: 'submit', class: 'button primary' }, 'Use token'))));
  const promise = run(dialog, async () => {
    const token = input.value.trim();
    if (!token) throw new Error('Paste a token, or cancel.');
    return token;
  }, error);
  input.focus();
  return promise;
}
