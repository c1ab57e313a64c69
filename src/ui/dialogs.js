/**
 * Confirmations and shown-once secrets, on native <dialog> elements (modal, Escape cancels,
 * focus stays inside). No window.confirm: it cannot say enough, and a browser may suppress it.
 *
 * 1. A confirmation resolves true only through its confirm button; Escape, Cancel and closing
 *    any other way resolve false. Cancel has the focus, so Enter does not destroy anything.
 * 2. A secret (a consumer key, a webhook secret) is shown once: the dialog empties its field
 *    when it closes, so the secret stays nowhere in the page afterwards.
 */
import { $, setText } from './dom.js';

/** Opens a dialog; any button inside with data-close closes it. */
export function openDialog(dialog) {
  if (!dialog.dataset.wired) {
    dialog.dataset.wired = '1';
    for (const button of dialog.querySelectorAll('[data-close]')) {
      button.addEventListener('click', () => dialog.close('cancel'));
    }
  }
  dialog.returnValue = '';
  if (!dialog.open) dialog.showModal();
}

/**
 * Asks before something that cannot be taken back or reaches far.
 * @param {{title: string, body: string | Node[], confirm: string, danger?: boolean}} opts
 * @returns {Promise<boolean>}
 */
export function confirmAction({ title, body, confirm, danger = true }) {
  const dialog = /** @type {HTMLDialogElement} */ ($('confirm-dialog'));
  setText($('confirm-title'), title);
  $('confirm-body').replaceChildren(...(typeof body === 'string' ? [body] : body));
  const ok = $('confirm-ok');
  setText(ok, confirm);
  ok.className = danger ? 'danger' : 'primary';
  openDialog(dialog);
  $('confirm-cancel').focus();
  return new Promise((resolve) => {
    const onOk = () => dialog.close('ok');
    ok.addEventListener('click', onOk);
    dialog.addEventListener(
      'close',
      () => {
        ok.removeEventListener('click', onOk);
        resolve(dialog.returnValue === 'ok');
      },
      { once: true },
    );
  });
}

/**
 * Shows a secret once, with a copy button.
 * @param {{title: string, note: string, value: string}} opts
 * @returns {Promise<void>} when the operator closes it
 */
export function showSecret({ title, note, value }) {
  const dialog = /** @type {HTMLDialogElement} */ ($('secret-dialog'));
  const field = /** @type {HTMLInputElement} */ ($('secret-value'));
  setText($('secret-title'), title);
  setText($('secret-note'), note);
  setText($('secret-copied'), '');
  field.value = value;
  openDialog(dialog);
  field.focus();
  field.select();
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        forgetSecret();
        resolve();
      },
      { once: true },
    );
  });
}

/** Empties the shown secret; run on the closing click itself too, as 'close' fires a task later. */
function forgetSecret() {
  /** @type {HTMLInputElement} */ ($('secret-value')).value = '';
  setText($('secret-copied'), '');
}

for (const button of $('secret-dialog').querySelectorAll('[data-close]')) button.addEventListener('click', forgetSecret);

async function copySecret() {
  const field = /** @type {HTMLInputElement} */ ($('secret-value'));
  try {
    await navigator.clipboard.writeText(field.value);
    setText($('secret-copied'), 'Copied to the clipboard.');
  } catch {
    field.focus();
    field.select();
    setText($('secret-copied'), 'The browser refused the clipboard: the text is selected, copy it with Ctrl+C (⌘C).');
  }
}

$('secret-copy').addEventListener('click', copySecret);
