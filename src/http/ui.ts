/**
 * The ops page (SPEC: Operations): GET /ui (and /ui/) plus its assets, served without a key.
 * The page asks the operator for the admin key and sends it as a Bearer header on its own API
 * calls; nothing here touches data, so there is nothing to authenticate.
 *
 * 1. The files in src/ui/ are read once, when the app is built; a missing file fails startup,
 *    not the first operator who opens the page.
 * 2. Only the files named in UI_ASSETS are served (no path from the request reaches the file
 *    system); the page's script is a handful of ES modules importing each other by these names.
 * 3. The page keeps the admin key in sessionStorage, so script injection would leak it: the CSP
 *    allows scripts, styles and fetches from this origin only, no inline code, no framing, and no
 *    native form submission (a key typed into the form can never end up in a URL).
 *    The page itself writes data to the DOM only as text.
 */
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';

export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const JS = 'text/javascript; charset=utf-8';

/** Every file of the page but index.html, with its content type and what it is (openapi.ts lists them). */
export const UI_ASSETS = {
  'app.js': { type: JS, what: 'The ops page’s script: sign-in, the refresh loop, the bridge.' },
  'api.js': { type: JS, what: 'The ops page’s API calls.' },
  'dom.js': { type: JS, what: 'The ops page’s DOM and formatting helpers.' },
  'dialogs.js': { type: JS, what: 'The ops page’s confirmations and shown-once secrets.' },
  'consumers.js': { type: JS, what: 'The ops page’s consumers: list, create, seek, rotate, delete.' },
  'webhooks.js': { type: JS, what: 'The ops page’s webhooks: list, pause, delete, attempts.' },
  'webhook-editor.js': { type: JS, what: 'The ops page’s webhook editor: the delivery shape, preview, test event.' },
  'events.js': { type: JS, what: 'The ops page’s event browser.' },
  'charts.js': { type: JS, what: 'The ops page’s charts (hand-drawn SVG).' },
  'style.css': { type: 'text/css; charset=utf-8', what: 'The ops page’s style sheet.' },
} as const;

export type UiAsset = keyof typeof UI_ASSETS;

const HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy': UI_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function uiRoutes(dir: URL = new URL('../ui/', import.meta.url)): Hono {
  const read = (name: string) => readFileSync(new URL(name, dir), 'utf8');
  const page = read('index.html');
  const html = () => new Response(page, { headers: { ...HEADERS, 'content-type': 'text/html; charset=utf-8' } });

  const app = new Hono();
  app.get('/ui', html);
  app.get('/ui/', html);
  for (const name of Object.keys(UI_ASSETS) as UiAsset[]) {
    const body = read(name);
    const type = UI_ASSETS[name].type;
    app.get(`/ui/${name}`, () => new Response(body, { headers: { ...HEADERS, 'content-type': type } }));
  }
  return app;
}
