/** WAMP v1 server behaviour: our client, malformed messages, cleanup, slow handlers, limits, options, the pipeline. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePattern, connectWamp, expandCurie, WAMP_ERRORS, WampError, WampProtocolError, type WampMessageContext } from '../../lib/apps/wamp/index.js';
import { delay, RawWamp, until, wampServer, withTimeout } from './helpers.js';

const T = 'http://example.com/topic';

test('connectWamp against the server: welcome, prefix, call (typed errors), subscribe/unsubscribe, publish variants', { timeout: 15_000 }, async () => {
  const { server, protocol, url } = await wampServer(
    {
      procedures: {
        'http://example.com/math#*': (args, { params }) => ({ op: params['*'], args }),
        'http://example.com/fail': () => {
          throw new WampError('http://example.com/error#mine', 'nope');
        },
      },
    },
    { serverIdent: 'test-server' },
  );
  try {
    const a = await connectWamp(url);
    const b = await connectWamp(url);
    assert.equal(a.version, 1);
    assert.equal(a.serverIdent, 'test-server');
    assert.notEqual(a.sessionId, b.sessionId);
    assert.equal(protocol.sessions.get(a.sessionId) !== undefined, true);

    a.prefix('m', 'http://example.com/math#');
    assert.deepEqual(await a.call('m:add', 1, 2), { op: 'add', args: [1, 2] });
    const error = await a.call('http://example.com/fail').catch((e: unknown) => e);
    assert.ok(error instanceof WampError);
    assert.equal(error.uri, 'http://example.com/error#mine');
    assert.equal(error.description, 'nope');
    assert.equal(error.details, undefined);
    const missing = (await a.call('http://example.com/none').catch((e: unknown) => e)) as WampError;
    assert.equal(missing.uri, WAMP_ERRORS.notFound);

    const gotA: unknown[] = [];
    const gotB: unknown[] = [];
    const onB = (event: unknown): void => void gotB.push(event);
    a.prefix('ex', 'http://example.com/');
    a.subscribe('ex:topic', (event, topic) => gotA.push([event, topic]));
    b.subscribe(T, onB);
    b.subscribe(T, onB); // a second callback on the same topic sends no second SUBSCRIBE
    await until(() => protocol.subscriberCount(T) === 2, 'two subscribers');
    b.publish(T, 1);
    b.publish(T, 2, true);
    b.publish(T, 3, [a.sessionId]);
    b.publish(T, 4, [], [a.sessionId]);
    await until(() => gotA.length === 3 && gotB.length === 2, 'events');
    assert.deepEqual(gotA, [
      [1, T],
      [2, T],
      [4, T],
    ]);
    assert.deepEqual(gotB, [1, 3]);
    b.unsubscribe(T, onB);
    await until(() => protocol.subscriberCount(T) === 1, 'b left');

    b.close();
    const pending = a.call('http://example.com/math#x');
    a.close();
    // Answered or refused: a call never hangs once the connection closes.
    await withTimeout(pending.catch((e: unknown) => assert.ok(e instanceof WampProtocolError)), 2000, 'pending call settles');
    await until(() => protocol.sessions.size === 0, 'sessions forgotten');
  } finally {
    await server.close();
  }
});

test('malformed messages: CALLERROR where a callId is known, otherwise a close with a reason; the server goes on', { timeout: 15_000 }, async () => {
  const errors: Error[] = [];
  const { server, url } = await wampServer({ procedures: { 'http://x/ok': () => 'ok' } }, { onError: (_c, e) => errors.push(e) });
  try {
    const cases: Array<[string, unknown, number, RegExp]> = [
      ['binary', new Uint8Array([1, 2, 3]), 1003, /text/],
      ['not JSON', '[2, "c", ', 1007, /not JSON/],
      ['not an array', '{"type": 2}', 1008, /array/],
      ['a bare number', '5', 1008, /array/],
      ['unknown type', [99, 'x'], 1008, /unknown WAMP message type 99/],
      ['a server-to-client type', [8, 'http://x/t', 1], 1008, /unknown WAMP message type 8/],
      ['a type that is not a number', ['2', 'c', 'http://x/ok'], 1008, /unknown/],
      ['an empty array', [], 1008, /unknown/],
      ['PREFIX arity', [1, 'p'], 1008, /PREFIX/],
      ['SUBSCRIBE arity', [5, T, 'extra'], 1008, /SUBSCRIBE/],
      ['UNSUBSCRIBE not a string', [6, 7], 1008, /UNSUBSCRIBE/],
      ['PUBLISH arity', [7, T], 1008, /PUBLISH/],
      ['PUBLISH with a bad exclude', [7, T, 1, [1, 2], []], 1008, /PUBLISH/],
      ['PUBLISH with too many', [7, T, 1, [], [], []], 1008, /PUBLISH/],
      ['CALL without a callId', [2, 17, 'http://x/ok'], 1008, /CALL/],
    ];
    for (const [what, message, code, reason] of cases) {
      const raw = await RawWamp.open(url);
      await raw.next(); // WELCOME
      raw.send(message);
      const closed = await withTimeout(raw.closed, 3000, `${what} closes`);
      assert.equal(closed.code, code, what);
      assert.match(closed.reason, reason, what);
    }
    // A CALL whose callId is known is answered, and the connection stays.
    const raw = await RawWamp.open(url);
    await raw.next();
    raw.send([2, 'c1', { not: 'a uri' }]);
    assert.deepEqual(await raw.next(), [4, 'c1', WAMP_ERRORS.invalid, 'CALL is [2, callId, procUri, ...args]']);
    raw.send([2, 'c2', 'http://x/ok']);
    assert.deepEqual(await raw.next(), [3, 'c2', 'ok']);
    raw.close();
    assert.deepEqual(errors, []);
    assert.equal(server.connections.size <= 1, true);
  } finally {
    await server.close();
  }
});

test('the last connection on a topic leaving forgets it, in the app and the server registry', { timeout: 15_000 }, async () => {
  const { server, protocol, url } = await wampServer();
  try {
    const clients = await Promise.all([1, 2, 3].map(() => connectWamp(url)));
    clients.forEach((c) => c.subscribe(T, () => {}));
    clients[0]!.subscribe(`${T}/only-first`, () => {});
    await until(() => protocol.subscriberCount(T) === 3 && protocol.subscriberCount(`${T}/only-first`) === 1, 'subscribed');
    assert.equal(server.subscriberCount(T), 3);
    assert.deepEqual(protocol.topicNames().sort(), [T, `${T}/only-first`]);
    clients[0]!.close();
    await until(() => protocol.subscriberCount(T) === 2, 'first closed');
    assert.deepEqual(protocol.topicNames(), [T]);
    assert.deepEqual(server.topicNames(), [T]);
    clients[1]!.conn.terminate();
    clients[2]!.close();
    await until(() => protocol.subscriberCount(T) === 0, 'all closed');
    assert.deepEqual(protocol.topicNames(), []);
    assert.deepEqual(server.topicNames(), []);
    assert.equal(protocol.sessions.size, 0);
  } finally {
    await server.close();
  }
});

test('a slow RPC handler on one connection blocks neither that connection nor another; calls in flight are bounded', { timeout: 15_000 }, async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { server, url } = await wampServer(
    {
      procedures: {
        'http://x/slow': async () => {
          await gate;
          return 'slow done';
        },
        'http://x/fast': (args) => args[0],
      },
    },
    { maxCallsInFlight: 2 },
  );
  try {
    const a = await connectWamp(url);
    const b = await connectWamp(url);
    const slow1 = a.call('http://x/slow');
    const slow2 = a.call('http://x/slow');
    const busy = (await a.call('http://x/slow').catch((e: unknown) => e)) as WampError;
    assert.equal(busy.uri, WAMP_ERRORS.busy);
    assert.equal(await withTimeout(b.call('http://x/fast', 'b'), 1000, 'another connection'), 'b');
    // a's own fast call is over the limit too while both slow ones are in flight.
    assert.equal(((await a.call('http://x/fast', 1).catch((e: unknown) => e)) as WampError).uri, WAMP_ERRORS.busy);
    release();
    assert.deepEqual(await Promise.all([slow1, slow2]), ['slow done', 'slow done']);
    assert.equal(await a.call('http://x/fast', 'again'), 'again');
    a.close();
    b.close();
  } finally {
    await server.close();
  }
});

test("options: the '#' CURIE rule, exposeErrors, topic routes that refuse and transform, middleware, open/close/error events", { timeout: 15_000 }, async () => {
  const events: string[] = [];
  const { server, protocol, url } = await wampServer(
    {
      procedures: {
        'http://x/calc#square': (args) => (args[0] as number) ** 2,
        'http://x/throw': () => {
          throw new Error('visible');
        },
      },
      topics: {
        'http://x/rooms/{room}': {
          subscribe: ({ params }) => params['room'] !== 'secret',
          publish: async (ctx) => {
            if (ctx.event === 'drop') return false;
            ctx.event = { room: ctx.params['room'], said: ctx.event };
            return undefined;
          },
          unsubscribe: ({ topic }) => void events.push(`unsubscribe ${topic}`),
        },
        'http://x/open': true,
      },
    },
    {
      curie: 'hash',
      exposeErrors: true,
      onOpen: (_conn, session) => void events.push(`open ${session.id.length}`),
      onClose: (_conn, code) => void events.push(`close ${code}`),
      onError: (_conn, error) => void events.push(`error ${error.message}`),
    },
  );
  const seen: string[] = [];
  protocol.use((ctx: WampMessageContext, next) => {
    seen.push(`${ctx.type} ${ctx.uri}`);
    return next();
  });
  assert.deepEqual(protocol.pipeline.names().slice(0, 3), ['parse', 'validate', 'subscriptions']);
  assert.equal(protocol.pipeline.names().at(-1), 'dispatch');
  try {
    const a = await connectWamp(url, { curie: 'hash' });
    a.prefix('calc', 'http://x/calc');
    assert.equal(await a.call('calc:square', 7), 49);
    const thrown = (await a.call('http://x/throw').catch((e: unknown) => e)) as WampError;
    assert.deepEqual([thrown.uri, thrown.description], [WAMP_ERRORS.generic, 'visible']);

    const got: unknown[] = [];
    a.subscribe('http://x/rooms/secret', (e) => got.push(['secret', e]));
    a.subscribe('http://x/rooms/lobby', (e) => got.push(['lobby', e]));
    a.subscribe('http://x/elsewhere', (e) => got.push(['elsewhere', e]));
    a.subscribe('http://x/open', (e) => got.push(['open', e]));
    await until(() => protocol.subscriberCount('http://x/rooms/lobby') === 1 && protocol.subscriberCount('http://x/open') === 1, 'subscribed');
    assert.equal(protocol.subscriberCount('http://x/rooms/secret'), 0);
    assert.equal(protocol.subscriberCount('http://x/elsewhere'), 0);
    a.publish('http://x/rooms/lobby', 'drop');
    a.publish('http://x/rooms/lobby', 'hi');
    a.publish('http://x/open', 'plain');
    a.publish('http://x/elsewhere', 'nobody');
    await until(() => got.length === 2, 'two events');
    await delay(100);
    assert.deepEqual(got, [
      ['lobby', { room: 'lobby', said: 'hi' }],
      ['open', 'plain'],
    ]);
    // The server's own publish: to this process's subscribers, filtered.
    assert.equal(protocol.publish('http://x/open', 'from the app', { eligible: [a.sessionId] }), 1);
    assert.equal(protocol.publish('http://x/open', 'to nobody', { exclude: [a.sessionId] }), 0);
    await until(() => got.length === 3, 'app publish');
    a.unsubscribe('http://x/rooms/lobby');
    await until(() => events.includes('unsubscribe http://x/rooms/lobby'), 'unsubscribe hook');
    assert.ok(seen.includes(`2 http://x/calc#square`), seen.join(' | '));
    a.close();
    await until(() => events.includes('close 1000'), 'onClose');
    assert.deepEqual(events, ['open 16', 'error visible', 'unsubscribe http://x/rooms/lobby', 'close 1000']);
  } finally {
    await server.close();
  }
});

test('CURIEs and URI patterns', () => {
  const prefixes = new Map([
    ['calc', 'http://example.com/simple/calc#'],
    ['ex', 'http://example.com/ex'],
  ]);
  assert.equal(expandCurie('calc:square', prefixes), 'http://example.com/simple/calc#square');
  assert.equal(expandCurie('ex:thing', prefixes), 'http://example.com/exthing');
  assert.equal(expandCurie('ex:thing', prefixes, 'hash'), 'http://example.com/ex#thing');
  assert.equal(expandCurie('calc:square', prefixes, 'hash'), 'http://example.com/simple/calc#square');
  assert.equal(expandCurie('http://example.com/a', prefixes), 'http://example.com/a');
  assert.equal(expandCurie(':x', prefixes), ':x');
  assert.equal(expandCurie('calc:x', new Map()), 'calc:x');

  assert.deepEqual(compilePattern('http://a/b').match('http://a/b'), {});
  assert.equal(compilePattern('http://a/b').match('http://a/bc'), null);
  assert.deepEqual(compilePattern('http://a/b#*').match('http://a/b#c/d'), { '*': 'c/d' });
  assert.deepEqual(compilePattern('http://a.b/{x}/{y}#get').match('http://a.b/1/2#get'), { x: '1', y: '2' });
  assert.equal(compilePattern('http://a.b/{x}#get').match('http://a.b/1/2#get'), null);
  assert.equal(compilePattern('http://a.b/{x}#get').match('http://aXb/1#get'), null);
  assert.deepEqual(compilePattern('http://a/{room}/*').match('http://a/r/s/t'), { room: 'r', '*': 's/t' });
  assert.throws(() => compilePattern(''), TypeError);
  assert.throws(() => compilePattern('http://a/{x}/{x}'), TypeError);
});

test('connectWamp refuses a server that does not agree wamp, sends no WELCOME, or a WELCOME of another version', { timeout: 15_000 }, async () => {
  const { Server } = await import('../../lib/server/serve.js');
  const server = new Server(null)
    .route('/other', { onOpen: (conn) => void conn.sendText('[0, "s", 1, "x"]') }, { subprotocols: ['not-wamp'] })
    .route('/silent', { onMessage() {} }, { subprotocols: ['wamp'] })
    .route('/v2', { onOpen: (conn) => void conn.sendText('[0, "s", 2, "x"]') }, { subprotocols: ['wamp'] });
  await server.listen('127.0.0.1', 0);
  try {
    for (const [path, message] of [
      ['/other', /did not agree/],
      ['/silent', /no WELCOME within 200 ms/],
      ['/v2', /not WAMP v1/],
    ] as const) {
      const error = await connectWamp(`${server.url}${path}`, { welcomeTimeout: 200 }).catch((e: unknown) => e);
      assert.ok(error instanceof WampProtocolError, `${path}: ${String(error)}`);
      assert.match(error.message, message);
    }
  } finally {
    await server.close();
  }
});
