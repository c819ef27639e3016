/**
 * The chat's protocol without a browser (docs/chat.md): resound's own client
 * against the chat in this process. Rooms, names, notices; what a user can
 * get wrong is answered with an error event on a connection that stays open;
 * what no page sends closes it with a code and a reason; the rate limit; the
 * Origin check; and nothing of it is ever an error on the server. Then
 * `resound chat` as a command: its URL on stdout, SIGTERM closes with 1001.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LIMITS } from '../../lib/apps/chat/server.js';
import { HandshakeError, type LogRecord } from '../../lib/index.js';
import { delay, withTimeout } from '../support.js';
import { ChatClient, idleSocket, reap, startChat, startChatCli, type ChatEvent, type LocalChat } from './helpers.js';

describe('the chat protocol', { timeout: 30_000 }, () => {
  let chat: LocalChat;
  /** Every warning or error the server logged: none is expected, whatever clients send. */
  const problems: LogRecord[] = [];

  before(async () => {
    chat = await startChat(0, {
      logger: {
        level: 'warn',
        log: (record) => void problems.push(record),
      },
    });
  });

  after(async () => {
    await chat?.close();
  });

  test('GET / is the page, with a CSP that allows nothing from elsewhere; /chat without an upgrade is 426; other paths 404', async () => {
    const page = await fetch(chat.url);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/]+=*'/, 'the inline script is allowed by its hash only');
    assert.match(csp, /connect-src 'self'/);
    const html = await page.text();
    assert.match(html, /^<!doctype html>/);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no external resource');
    assert.doesNotMatch(html, /innerHTML/, 'user text is never parsed as HTML');

    const head = await fetch(chat.url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal((await fetch(`${chat.url}chat`)).status, 426);
    assert.equal((await fetch(`${chat.url}nothing-here`)).status, 404);
    assert.equal((await fetch(chat.url, { method: 'POST', body: 'x' })).status, 405);
  });

  test('join, notices and messages: a room hears its own members only', async () => {
    const { client: alice, welcome } = await ChatClient.join(chat.url, 'alice', 'lobby');
    assert.equal(welcome.name, 'alice');
    assert.equal(welcome.room, 'lobby');
    assert.equal(welcome.worker, process.pid, 'the welcome names the serving process');
    assert.ok(typeof welcome.time === 'number' && Math.abs(welcome.time - Date.now()) < 60_000, 'a time in ms');

    const { client: bob } = await ChatClient.join(chat.url, '  bob  ', 'lobby');
    assert.deepEqual(pick(await alice.next('alice to hear bob join')), { type: 'joined', name: 'bob' }, 'names are trimmed');
    const { client: carol } = await ChatClient.join(chat.url, 'carol', 'elsewhere');

    alice.send({ type: 'say', text: '  hello ✓ <b>&amp;</b>  ' });
    const said = { type: 'message', name: 'alice', text: 'hello ✓ <b>&amp;</b>' };
    assert.deepEqual(pick(await alice.next('alice to hear herself')), said, 'the sender hears its message back, with the time the server gave it');
    assert.deepEqual(pick(await bob.next('bob to hear alice')), said);
    // carol's next event is her own message: nothing from the lobby came before it.
    carol.send({ type: 'say', text: 'anyone?' });
    assert.deepEqual(pick(await carol.next('carol to hear herself')), { type: 'message', name: 'carol', text: 'anyone?' });

    await bob.close();
    assert.deepEqual(pick(await alice.next('alice to hear bob leave')), { type: 'left', name: 'bob' });
    await alice.close();
    await carol.close();
  });

  test('what a person can get wrong is answered with an error event, and the connection stays open', async () => {
    const client = await ChatClient.open(chat.url);
    const refused: Array<[unknown, RegExp]> = [
      [{ type: 'join', name: 'x'.repeat(LIMITS.name + 1), room: 'lobby' }, /^name: 1 to 24 characters/],
      [{ type: 'join', name: '   ', room: 'lobby' }, /^name:/],
      [{ type: 'join', room: 'lobby' }, /^name:/],
      [{ type: 'join', name: 'bell\u0007', room: 'lobby' }, /^name:/],
      [{ type: 'join', name: 'evil\u202e', room: 'lobby' }, /^name:/],
      [{ type: 'join', name: 'dave', room: 'Lobby' }, /^room: 1 to 24 of a-z, 0-9 and -$/],
      [{ type: 'join', name: 'dave', room: 'lobby!' }, /^room:/],
      [{ type: 'join', name: 'dave', room: '../etc' }, /^room:/],
      [{ type: 'join', name: 'dave', room: 'r'.repeat(25) }, /^room:/],
      [{ type: 'join', name: 'dave', room: 7 }, /^room:/],
    ];
    for (const [message, error] of refused) {
      // At the pace of the rate limit: these are mistakes, not a flood.
      await delay(1000 / LIMITS.perSecond);
      client.send(message);
      const event = await client.next(`the answer to ${JSON.stringify(message)}`);
      assert.equal(event.type, 'error', `${JSON.stringify(message)} is refused`);
      assert.match(event.error ?? '', error);
    }
    // Still open: 24 characters (an emoji is one) are a name.
    const name = '😀'.repeat(LIMITS.name);
    client.send({ type: 'join', name, room: 'r'.repeat(24) });
    assert.deepEqual(pick(await client.next('the welcome after the mistakes')), { type: 'welcome', name, room: 'r'.repeat(24) });
    await client.next('its joined notice');

    for (const text of ['', '   ', 'x'.repeat(LIMITS.text + 1), 42]) {
      client.send({ type: 'say', text });
      assert.deepEqual(pick(await client.next(`the answer to say ${JSON.stringify(text)}`)), { type: 'error', error: 'text: 1 to 500 characters' });
    }
    // 500 characters of 4 UTF-8 bytes each fit in maxPayload.
    const longest = '😀'.repeat(LIMITS.text);
    client.send({ type: 'say', text: longest });
    assert.equal((await client.next('the longest message')).text, longest);
    client.send({ type: 'say', text: 'a\nb\tc\u0000d' });
    assert.equal((await client.next('a message with control characters')).text, 'a b c d', 'control characters become spaces');
    await client.close();
  });

  test('what no page sends closes the connection with a code and a reason', async () => {
    const cases: Array<{ what: string; send: (c: ChatClient) => void; code: number; reason: RegExp }> = [
      { what: 'not JSON', send: (c) => c.send('{"type": "join", '), code: 1008, reason: /^expected a JSON object with a "type"$/ },
      { what: 'a JSON array', send: (c) => c.send('[1, 2]'), code: 1008, reason: /JSON object/ },
      { what: 'no type', send: (c) => c.send({ name: 'x' }), code: 1008, reason: /JSON object/ },
      { what: 'an unknown type', send: (c) => c.send({ type: 'dance' }), code: 1008, reason: /^unknown message type$/ },
      { what: 'say before join', send: (c) => c.send({ type: 'say', text: 'hi' }), code: 1008, reason: /^join a room first$/ },
      {
        what: 'a second join',
        send: (c) => {
          c.send({ type: 'join', name: 'eve', room: 'lobby' });
          c.send({ type: 'join', name: 'eve', room: 'other' });
        },
        code: 1008,
        reason: /^already joined$/,
      },
      { what: 'a binary message', send: (c) => void c.conn.sendBinary(Buffer.from('{"type":"say"}')).catch(() => undefined), code: 1003, reason: /^text messages only$/ },
      { what: `a message over ${LIMITS.maxPayload} bytes`, send: (c) => c.send({ type: 'say', text: 'x'.repeat(LIMITS.maxPayload) }), code: 1009, reason: /./ },
    ];
    for (const { what, send, code, reason } of cases) {
      const client = await ChatClient.open(chat.url);
      send(client);
      const closed = await client.closed();
      assert.equal(closed.code, code, `${what}: close code`);
      assert.match(closed.reason, reason, `${what}: close reason`);
    }
  });

  test('what crosses the close is not acted on: a join sent right after a bad message joins no one', async () => {
    const { client: alice } = await ChatClient.join(chat.url, 'alice', 'crossed');
    const intruder = await ChatClient.open(chat.url);
    intruder.send('not json');
    intruder.send({ type: 'join', name: 'intruder', room: 'crossed' });
    intruder.send({ type: 'say', text: 'am I in?' });
    assert.equal((await intruder.closed()).code, 1008);
    alice.send({ type: 'say', text: 'alone?' });
    assert.deepEqual(pick(await alice.next('alice to hear herself')), { type: 'message', name: 'alice', text: 'alone?' }, 'no joined, message or left of the intruder came first');
    await alice.close();
  });

  test(`rate limit: a burst of ${LIMITS.burst}, then "too fast" errors; the connection stays open`, async () => {
    const { client } = await ChatClient.join(chat.url, 'fast', 'rate');
    const sent = LIMITS.burst + 5;
    // The join took one token (and maybe gave a fraction back): send more than the burst at once.
    for (let i = 0; i < sent; i++) client.send({ type: 'say', text: `m${i}` });
    const events: ChatEvent[] = [];
    for (let i = 0; i < sent; i++) events.push(await client.next(`answer ${i} of the burst`));
    const messages = events.filter((e) => e.type === 'message').length;
    const errors = events.filter((e) => e.type === 'error' && e.error === 'too fast: wait a moment').length;
    assert.equal(messages + errors, sent, `every message is published or refused: ${JSON.stringify(events.map((e) => e.type))}`);
    assert.ok(messages >= LIMITS.burst - 1 && messages <= LIMITS.burst, `about a burst is published (${messages})`);
    // Tokens come back with time.
    await new Promise((resolve) => setTimeout(resolve, 1000 / LIMITS.perSecond + 50));
    client.send({ type: 'say', text: 'later' });
    assert.deepEqual(pick(await client.next('a message after a pause')), { type: 'message', name: 'fast', text: 'later' });
    await client.close();
  });

  test('Origin: the page\'s own is accepted, another site is refused with 403, none (not a browser) is accepted', async () => {
    const own = await ChatClient.open(chat.url, { origin: chat.url.replace(/\/$/, '') });
    await own.close();
    await assert.rejects(ChatClient.open(chat.url, { origin: 'https://elsewhere.example' }), (error: unknown) => {
      assert.ok(error instanceof HandshakeError, String(error));
      assert.equal(error.status, 403);
      return true;
    });
    await assert.rejects(ChatClient.open(chat.url, { origin: 'not a url' }), (error: unknown) => error instanceof HandshakeError && error.status === 403);
  });

  test('after all of that the server still serves, and logged no warning or error', async () => {
    const { client } = await ChatClient.join(chat.url, 'last', 'lobby');
    client.send({ type: 'say', text: 'still here' });
    assert.equal((await client.next('the last message')).text, 'still here');
    await client.close();
    assert.deepEqual(problems, []);
  });
});

describe('resound chat, the command', { timeout: 30_000 }, () => {
  test('prints its URL, serves page and WebSocket on that one port, and on SIGTERM closes with 1001 and exits 0', async () => {
    const child = await startChatCli();
    try {
      assert.match(child.stdout(), /^resound chat on http:\/\/127\.0\.0\.1:\d+\/\n$/);
      assert.equal((await fetch(child.url)).status, 200);
      const { client, welcome } = await ChatClient.join(child.url, 'alice', 'lobby');
      assert.equal(welcome.worker, child.proc.pid, 'one process serves');
      // A socket that never sends a request, as a browser's preconnect: it must not hold the exit.
      const idle = await idleSocket(child.url);
      child.proc.kill('SIGTERM');
      assert.deepEqual(await client.closed(), { code: 1001, reason: 'server shutting down' });
      assert.deepEqual(await withTimeout(child.exited, 3000, 'resound chat to exit after SIGTERM'), { code: 0, signal: null }, child.stderr());
      idle.destroy();
      assert.equal(child.stderr(), '');
    } finally {
      reap(child);
    }
  });

  test('a bad --workers is refused before anything listens', async () => {
    await assert.rejects(startChatCli(['--workers', '0']), /exited \(1\) before printing its URL; stderr: resound: bad --workers 0/);
  });
});

/** An event without its time (and the welcome's worker), to compare. */
function pick(event: ChatEvent): Omit<ChatEvent, 'time' | 'worker'> {
  const { time: _time, worker: _worker, ...rest } = event;
  return rest;
}
