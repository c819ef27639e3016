/**
 * A real browser as the peer: headless Chromium (Debian's, installed by the
 * pretest step) opens `new WebSocket(...)` in a page against a resound echo
 * server. Text and binary come back byte for byte, a close with 4000 and a
 * reason reaches the server's onClose, and the browser's offer of
 * permessage-deflate is seen and (today) declined. The page is driven through
 * spec/browser.ts, which speaks DevTools over resound's own client; it is
 * served from 127.0.0.1 (Chromium's Local Network Access checks keep
 * about:blank and data: pages from reaching loopback).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serve, type Server, type WSConnection } from '../../lib/index.js';
import { launchChromium, servePage, type Browser, type ServedPage } from '../browser.js';
import { assertSameBytes, patternBytes, patternText, withTimeout } from '../support.js';

/** In-page bound on each wait, so a stuck socket fails with a message instead of the DevTools timeout. */
const PAGE_WAIT_MS = 10_000;

/**
 * Installed once in the page: `window.__resound` holds the socket, the
 * messages received and the close event, with bounded waits on them.
 */
const PAGE_SETUP = `
window.__resound = (() => {
  const within = (promise, ms, what) => Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after ' + ms + ' ms in the page: ' + what)), ms)),
  ]);
  const toBase64 = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(binary);
  };
  const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer;
  const state = { ws: null, messages: [], waiters: [], closeEvent: null, errors: 0 };
  state.open = (url) => within(new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    state.ws = ws;
    ws.onmessage = (event) => {
      const message = typeof event.data === 'string'
        ? { type: 'text', text: event.data }
        : { type: event.data instanceof ArrayBuffer ? 'binary' : typeof event.data, base64: toBase64(event.data) };
      const waiter = state.waiters.shift();
      if (waiter) waiter.resolve(message); else state.messages.push(message);
    };
    ws.onerror = () => { state.errors++; };
    ws.onopen = () => resolve({ extensions: ws.extensions, protocol: ws.protocol });
    ws.onclose = (event) => {
      state.closeEvent = { code: event.code, reason: event.reason, wasClean: event.wasClean };
      const closed = new Error('the WebSocket closed (' + event.code + ')');
      for (const waiter of state.waiters.splice(0)) waiter.reject(closed);
      reject(new Error('closed before open: ' + event.code));
    };
  }), ${PAGE_WAIT_MS}, 'the WebSocket to open');
  state.next = (what) => {
    const queued = state.messages.shift();
    if (queued) return Promise.resolve(queued);
    return within(new Promise((resolve, reject) => state.waiters.push({ resolve, reject })), ${PAGE_WAIT_MS}, what);
  };
  const openSocket = () => {
    if (state.ws === null || state.ws.readyState !== WebSocket.OPEN) {
      throw new Error('no open WebSocket' + (state.closeEvent ? ' (it closed with ' + state.closeEvent.code + ')' : ''));
    }
    return state.ws;
  };
  state.echoText = async (text) => { openSocket().send(text); return state.next('the echo of a text message'); };
  state.echoBinary = async (base64) => { openSocket().send(fromBase64(base64)); return state.next('the echo of a binary message'); };
  state.close = (code, reason) => within(new Promise((resolve) => {
    if (state.closeEvent) { resolve(state.closeEvent); return; }
    state.ws.addEventListener('close', () => resolve(state.closeEvent));
    state.ws.close(code, reason);
  }), ${PAGE_WAIT_MS}, 'the close event');
  return state;
})();
'ready'`;

interface PageMessage {
  type: string;
  text?: string;
  base64?: string;
}

describe('headless Chromium as the client', { timeout: 90_000 }, () => {
  let browser: Browser;
  let server: Server;
  let pageServer: ServedPage;
  const requests: Array<Record<string, string | undefined>> = [];
  const received: Array<string | Buffer> = [];
  const closes: Array<{ code: number; reason: string }> = [];
  // A promise, not a poll: a wait that gives up must leave nothing running, or the file's process never exits.
  let closeSeen: () => void = () => undefined;
  const serverClosed = new Promise<void>((resolve) => {
    closeSeen = resolve;
  });
  const errors: Error[] = [];

  before(async () => {
    server = await serve(
      {
        onOpen(conn: WSConnection) {
          const headers = conn.request.headers;
          requests.push({
            extensions: headers['sec-websocket-extensions'],
            userAgent: headers['user-agent'],
            origin: headers['origin'],
          });
        },
        onMessage(conn, message) {
          received.push(message);
          return conn.send(message);
        },
        onClose(_conn, code, reason) {
          closes.push({ code, reason });
          closeSeen();
        },
        onError(_conn, error) {
          errors.push(error);
        },
      },
      '127.0.0.1',
      0,
    );
    // The page comes from 127.0.0.1: Chromium blocks WebSockets to loopback from about:blank and data: pages (Local Network Access).
    pageServer = await servePage('<!doctype html><meta charset="utf-8"><title>resound</title><p>resound in Chromium</p>');
    browser = await launchChromium();
    await browser.page.goto(pageServer.url);
    assert.equal(await browser.page.evaluate<string>(PAGE_SETUP), 'ready');
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await pageServer?.close();
  });

  test('the page opens a WebSocket; the browser offers permessage-deflate and the server accepts it', async () => {
    const opened = await browser.page.evaluate<{ extensions: string; protocol: string }>(
      `window.__resound.open(${JSON.stringify(`ws://127.0.0.1:${server.address().port}/`)})`,
    );
    assert.equal(requests.length, 1, 'one handshake reached the server');
    const request = requests[0]!;
    assert.match(request.userAgent ?? '', /HeadlessChrome\//, 'the peer is headless Chromium');
    assert.equal(request.origin, pageServer.url.replace(/\/$/, ''), "the page's origin");
    assert.match(
      request.extensions ?? '',
      /(^|[\s,])permessage-deflate($|[\s;,])/,
      `Chromium offers permessage-deflate in sec-websocket-extensions (got ${String(request.extensions)})`,
    );
    assert.equal(opened.extensions, 'permessage-deflate; server_no_context_takeover', 'what the page sees agreed (ws.extensions)');
    assert.equal(opened.protocol, '', 'no subprotocol was asked for or chosen');
  });

  test('text and binary (ArrayBuffer) come back byte for byte', async () => {
    const texts = ['hello from Chromium', 'héllo wörld — Ω Ж 中文 😀 𝄞', '', patternText(70_000, 17)];
    for (const text of texts) {
      const echo = await browser.page.evaluate<PageMessage>(`window.__resound.echoText(${JSON.stringify(text)})`);
      assert.equal(echo.type, 'text', `a text message of ${Buffer.byteLength(text)} bytes comes back as text`);
      assertSameBytes(Buffer.from(echo.text!, 'utf8'), Buffer.from(text, 'utf8'), `text echo of ${Buffer.byteLength(text)} bytes`);
    }

    const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const binaries = [everyByte, Buffer.alloc(0), patternBytes(125, 1), patternBytes(126, 2), patternBytes(70_000, 3)];
    for (const bytes of binaries) {
      const echo = await browser.page.evaluate<PageMessage>(`window.__resound.echoBinary(${JSON.stringify(bytes.toString('base64'))})`);
      assert.equal(echo.type, 'binary', `a binary message of ${bytes.length} bytes comes back as an ArrayBuffer`);
      assertSameBytes(Buffer.from(echo.base64!, 'base64'), bytes, `binary echo of ${bytes.length} bytes`);
    }

    // What the server received is what the page sent, with its type.
    const sent: Array<string | Buffer> = [...texts, ...binaries];
    assert.equal(received.length, sent.length, 'one server message per message sent');
    sent.forEach((message, i) => {
      const got = received[i]!;
      assert.equal(typeof got, typeof message, `message ${i}: text stays text, binary stays binary`);
      const bytes = (m: string | Buffer): Buffer => (typeof m === 'string' ? Buffer.from(m, 'utf8') : m);
      assertSameBytes(bytes(got), bytes(message), `message ${i} as the server received it`);
    });
  });

  test('compressed both ways: 100 KB of repetitive JSON crosses the wire in a few KB each way and comes back whole', async () => {
    const conn = [...server.connections][0] as unknown as { socket: { bytesRead: number; bytesWritten: number } };
    const read = conn.socket.bytesRead;
    const written = conn.socket.bytesWritten;
    const text = JSON.stringify(Array.from({ length: 1500 }, (_, i) => ({ id: i, user: `user${i % 10}`, active: i % 3 === 0, score: i * 7 })));
    const echo = await browser.page.evaluate<PageMessage>(`window.__resound.echoText(${JSON.stringify(text)})`);
    assert.equal(echo.text, text, 'the echo is the text sent');
    const inbound = conn.socket.bytesRead - read;
    const outbound = conn.socket.bytesWritten - written;
    assert.ok(inbound < text.length / 5, `Chromium compressed: ${inbound} bytes on the wire for ${text.length}`);
    assert.ok(outbound < text.length / 5, `resound compressed: ${outbound} bytes on the wire for ${text.length}`);
  });

  test('a close with 4000 and a reason reaches the server, and the page sees it answered', async () => {
    const reason = 'bye from Chromium — ✓';
    const event = await browser.page.evaluate<{ code: number; reason: string; wasClean: boolean }>(
      `window.__resound.close(4000, ${JSON.stringify(reason)})`,
    );
    assert.deepEqual(event, { code: 4000, reason, wasClean: true }, 'the page saw its close answered with the same code and reason, cleanly');
    await withTimeout(serverClosed, 10_000, 'the server onClose after the page closed');
    assert.deepEqual(closes, [{ code: 4000, reason }], 'the server saw the close code and reason the page sent');
    assert.equal(await browser.page.evaluate<number>('window.__resound.errors'), 0, 'no error event in the page');
    assert.deepEqual(errors, [], 'no server-side error');
  });

  test('harness: a page exception becomes a clear error, and a screenshot is a PNG', async () => {
    await assert.rejects(
      browser.page.evaluate('(async () => { throw new TypeError("thrown in the page") })()'),
      /the page script threw: TypeError: thrown in the page/,
    );
    const dir = await mkdtemp(join(tmpdir(), 'resound-shot-'));
    try {
      const path = join(dir, 'page.png');
      await browser.page.screenshot(path);
      const png = await readFile(path);
      assertSameBytes(png.subarray(0, 8), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'PNG signature');
      assert.ok(png.length > 100, `a screenshot of some size (${png.length} bytes)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
