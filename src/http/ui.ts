/**
 * The ops page (SPEC: Operations): GET /ui (and /ui/) plus its two assets, served without a key.
 * The page asks the operator for the admin key and sends it as a Bearer header on its own API
 * calls; nothing here touches data, so there is nothing to authenticate.
 *
 * 1. The files in src/ui/ are read once, when the app is built; a missing file fails startup,
 *    not the first operator who opens the page.
 * 2. Only the files named below are served (no path from the request reaches the file system).
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

const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
} as const;

type UiFile = keyof typeof FILES;

const HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy': UI_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function uiRoutes(dir: URL = new URL('../ui/', import.meta.url)): Hono {
  const body = {} as Record<UiFile, string>;
  for (const name of Object.keys(FILES) as UiFile[]) body[name] = readFileSync(new URL(name, dir), 'utf8');

  const serve = (name: UiFile) => () =>
    new Response(body[name], { headers: { ...HEADERS, 'content-type': FILES[name] } });

  const app = new Hono();
  app.get('/ui', serve('index.html'));
  app.get('/ui/', serve('index.html'));
  app.get('/ui/app.js', serve('app.js'));
  app.get('/ui/style.css', serve('style.css'));
  return app;
}
