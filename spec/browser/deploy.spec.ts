/**
 * The deployable server in a real browser: headless Chromium loads a page
 * from a node:http app and opens WebSockets to the same port (/chat and
 * /rooms/:room, attached), and wss:// to an attached https server and to the
 * standalone TLS listener (a self-signed certificate, accepted with
 * --ignore-certificate-errors).
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { attach, serve, Server } from '../../lib/index.js';
import { launchChromium } from '../browser.js';
import { selfSignedCertificate } from '../support.js';

/** In the page: open `url`, send `text`, return the answer and the close code after closing with 1000. */
function roundTrip(url: string, text: string): string {
  return `(async () => {
    const ws = new WebSocket(${JSON.stringify(url)});
    const bounded = (promise, what) => Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('timed out: ' + what)), 10000))]);
    await bounded(new Promise((resolve, reject) => { ws.onopen = resolve; ws.onclose = (e) => reject(new Error('closed before open: ' + e.code)); }), 'open');
    const answer = bounded(new Promise((resolve) => { ws.onmessage = (e) => resolve(e.data); }), 'answer');
    ws.send(${JSON.stringify(text)});
    const data = await answer;
    const closed = bounded(new Promise((resolve) => { ws.onclose = (e) => resolve(e.code); }), 'close');
    ws.close(1000);
    return { data, code: await closed };
  })()`;
}

test('Chromium: a page from a node:http app, WebSockets on the same port at /chat and /rooms/:room', { timeout: 90_000 }, async () => {
  const http = createHttpServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>app</title><p id="hello">hello</p>'));
  new Server(null)
    .route('/chat', (conn, message) => conn.send(`chat: ${String(message)}`))
    .route('/rooms/:room', (conn, message) => conn.send(`${conn.params['room']}: ${String(message)}`))
    .attach(http);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  const browser = await launchChromium();
  try {
    await browser.page.goto(`http://127.0.0.1:${port}/`);
    assert.equal(await browser.page.evaluate<string>("document.getElementById('hello').textContent"), 'hello');
    assert.deepEqual(await browser.page.evaluate(roundTrip(`ws://127.0.0.1:${port}/chat`, 'hi')), { data: 'chat: hi', code: 1000 });
    assert.deepEqual(await browser.page.evaluate(roundTrip(`ws://127.0.0.1:${port}/rooms/blue`, 'yo')), { data: 'blue: yo', code: 1000 });
  } finally {
    await browser.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  }
});

test('Chromium: wss:// attached to an https server and on the standalone TLS listener', { timeout: 90_000 }, async () => {
  const { cert, key } = selfSignedCertificate();
  const https = createHttpsServer({ cert, key }, (_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>secure</title>'));
  const attached = attach(https, (conn, message) => conn.send(`attached: ${String(message)}`));
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  const httpsPort = (https.address() as AddressInfo).port;
  const standalone = await serve((conn, message) => conn.send(`standalone: ${String(message)}`), '127.0.0.1', 0, { tls: { cert, key } });
  const browser = await launchChromium({ args: ['--ignore-certificate-errors'] });
  try {
    await browser.page.goto(`https://127.0.0.1:${httpsPort}/`);
    assert.deepEqual(await browser.page.evaluate(roundTrip(`wss://127.0.0.1:${httpsPort}/`, 'a')), { data: 'attached: a', code: 1000 });
    assert.deepEqual(await browser.page.evaluate(roundTrip(`${standalone.url}/`, 'b')), { data: 'standalone: b', code: 1000 });
  } finally {
    await browser.close();
    await attached.close();
    await standalone.close();
    https.closeAllConnections();
    await new Promise((resolve) => https.close(resolve));
  }
});
