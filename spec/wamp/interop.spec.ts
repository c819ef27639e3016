/**
 * WAMP v1 against clients that are not resound's: the npm package wamp1
 * (over Node's built-in WebSocket with the `wamp` subprotocol) and raw JSON
 * arrays written from the spec's message shapes (wamp.ws/spec/wamp1).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WAMP_ERRORS, WampError, type WampApp } from '../../lib/apps/wamp/index.js';
import { call1, openWamp1, RawWamp, until, wampServer } from './helpers.js';

const CALC = 'http://example.com/simple/calc#';
const CHAT = 'http://example.com/chat';

const app: WampApp = {
  procedures: {
    [`${CALC}add`]: (args) => (args as number[]).reduce((a, b) => a + b, 0),
    [`${CALC}fail`]: () => {
      throw new WampError('http://example.com/error#fail', 'it failed', { why: 'asked to' });
    },
    [`${CALC}boom`]: () => {
      throw new Error('a secret stack');
    },
    'http://example.com/users/{id}#get': async (_args, { params }) => ({ id: params['id'] }),
    [`${CALC}nothing`]: () => undefined,
  },
};
const quiet = { onError() {} };

test('wamp1 (npm) against the server: welcome, prefix, call with a CURIE, call errors, pub/sub with excludeMe, exclude, eligible, unsubscribe', { timeout: 15_000 }, async () => {
  const { server, protocol, url } = await wampServer(app, quiet);
  try {
    const [a, b, c] = await Promise.all([openWamp1(url), openWamp1(url), openWamp1(url)]);
    for (const { welcome } of [a, b, c]) {
      assert.equal(typeof welcome.sessionId, 'string');
      assert.equal(welcome.version, 1);
      assert.equal(welcome.server, 'resound');
    }
    assert.equal(new Set([a, b, c].map((x) => x.welcome.sessionId)).size, 3);

    a.client.prefix('calc', CALC);
    assert.equal(await call1(a.client, 'calc:add', 1, 2, 3), 6);
    assert.equal(await call1(a.client, `${CALC}add`, 40, 2), 42);
    assert.deepEqual(await call1(a.client, 'http://example.com/users/17#get'), { id: '17' });
    assert.equal(await call1(a.client, 'calc:nothing'), null);

    const fail = (await call1(a.client, 'calc:fail').catch((e: unknown) => e)) as Error & { uri: string; details: unknown };
    assert.equal(fail.message, 'it failed');
    assert.equal(fail.uri, 'http://example.com/error#fail');
    assert.deepEqual(fail.details, { why: 'asked to' });
    const boom = (await call1(a.client, 'calc:boom').catch((e: unknown) => e)) as Error & { uri: string; details: unknown };
    assert.equal(boom.uri, WAMP_ERRORS.generic);
    assert.equal(boom.message, 'internal error');
    assert.equal(boom.details, undefined);
    const missing = (await call1(a.client, 'calc:nope').catch((e: unknown) => e)) as Error & { uri: string };
    assert.equal(missing.uri, WAMP_ERRORS.notFound);
    // b never registered calc: the CURIE is not expanded for it.
    assert.equal(((await call1(b.client, 'calc:add', 1).catch((e: unknown) => e)) as { uri: string }).uri, WAMP_ERRORS.notFound);

    const got: Record<string, unknown[]> = { a: [], b: [], c: [] };
    a.client.subscribe(CHAT, (event) => got['a']!.push(event));
    b.client.prefix('chat', 'http://example.com/');
    b.client.subscribe('chat:chat', (event) => got['b']!.push(event));
    c.client.subscribe(CHAT, (event) => got['c']!.push(event));
    await until(() => protocol.subscriberCount(CHAT) === 3, '3 subscribers');
    assert.equal(server.subscriberCount(CHAT), 3);

    a.client.publish(CHAT, { text: 'to all' });
    await until(() => got['a']!.length === 1 && got['b']!.length === 1 && got['c']!.length === 1, 'everyone, the publisher too');
    assert.deepEqual(got['b'], [{ text: 'to all' }]);

    a.client.publish(CHAT, 'not me', true);
    await until(() => got['b']!.length === 2 && got['c']!.length === 2, 'excludeMe');
    a.client.publish(CHAT, 'not b', [b.welcome.sessionId]);
    await until(() => got['a']!.length === 2 && got['c']!.length === 3, 'exclude b');
    a.client.publish(CHAT, 'only c', [], [c.welcome.sessionId]);
    await until(() => got['c']!.length === 4, 'eligible c');
    a.client.publish(CHAT, 'c but excluded', [c.welcome.sessionId], [c.welcome.sessionId, b.welcome.sessionId]);
    await until(() => got['b']!.length === 3, 'eligible b and c, c excluded');

    b.client.unsubscribe('chat:chat');
    await until(() => protocol.subscriberCount(CHAT) === 2, 'b left');
    a.client.publish(CHAT, 'after b left', true);
    await until(() => got['c']!.length === 5, 'c hears it');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, {
      a: [{ text: 'to all' }, 'not b'],
      b: [{ text: 'to all' }, 'not me', 'c but excluded'],
      c: [{ text: 'to all' }, 'not me', 'not b', 'only c', 'after b left'],
    });
    for (const x of [a, b, c]) x.ws.close();
    await until(() => protocol.subscriberCount(CHAT) === 0 && server.subscriberCount(CHAT) === 0, 'closed connections leave');
    assert.deepEqual(protocol.topicNames(), []);
  } finally {
    await server.close();
  }
});

test('raw JSON arrays: the exact messages WAMP v1 prescribes', { timeout: 15_000 }, async () => {
  const { server, url } = await wampServer(app, { ...quiet, serverIdent: 'resound-spec/1' });
  try {
    const a = await RawWamp.open(url);
    const b = await RawWamp.open(url);
    const welcomeA = (await a.next()) as unknown[];
    assert.equal(welcomeA.length, 4);
    assert.equal(welcomeA[0], 0);
    assert.equal(typeof welcomeA[1], 'string');
    assert.deepEqual(welcomeA.slice(2), [1, 'resound-spec/1']);
    const welcomeB = (await b.next()) as unknown[];
    const [idA, idB] = [welcomeA[1] as string, welcomeB[1] as string];

    a.send([1, 'calc', CALC]);
    a.send([2, 'c1', 'calc:add', 2, 3]);
    assert.deepEqual(await a.next(), [3, 'c1', 5]);
    a.send([2, 'c2', 'calc:fail']);
    assert.deepEqual(await a.next(), [4, 'c2', 'http://example.com/error#fail', 'it failed', { why: 'asked to' }]);
    a.send([2, 'c3', 'calc:boom']);
    assert.deepEqual(await a.next(), [4, 'c3', WAMP_ERRORS.generic, 'internal error']);
    a.send([2, 'c4', 'calc:nope']);
    assert.deepEqual(await a.next(), [4, 'c4', WAMP_ERRORS.notFound, `no procedure ${CALC}nope`]);
    a.send([2, 'c5', 42]);
    assert.deepEqual(await a.next(), [4, 'c5', WAMP_ERRORS.invalid, 'CALL is [2, callId, procUri, ...args]']);

    a.send([5, CHAT]);
    b.send([1, 'ex', 'http://example.com/']);
    b.send([5, 'ex:chat']);
    // The subscriptions are in once a call made after them is answered (messages are handled in order).
    b.send([2, 'sync', 'calc:add']);
    assert.deepEqual(await b.next(), [4, 'sync', WAMP_ERRORS.notFound, 'no procedure calc:add']);
    a.send([7, CHAT, { n: 1 }]);
    assert.deepEqual(await a.next(), [8, CHAT, { n: 1 }]);
    assert.deepEqual(await b.next(), [8, CHAT, { n: 1 }]);
    a.send([7, 'calc:ignored', 1]); // nobody subscribed there
    a.send([7, CHAT, { n: 2 }, true]);
    assert.deepEqual(await b.next(), [8, CHAT, { n: 2 }]);
    a.send([7, CHAT, { n: 3 }, [idB]]);
    assert.deepEqual(await a.next(), [8, CHAT, { n: 3 }]);
    a.send([7, CHAT, { n: 4 }, [], [idB]]);
    assert.deepEqual(await b.next(), [8, CHAT, { n: 4 }]);
    a.send([7, CHAT, null, [idA], [idA, idB]]);
    assert.deepEqual(await b.next(), [8, CHAT, null]);
    b.send([6, 'ex:chat']);
    b.send([2, 'sync2', 'http://example.com/users/x#get']);
    assert.deepEqual(await b.next(), [3, 'sync2', { id: 'x' }]);
    a.send([7, CHAT, 'last']);
    assert.deepEqual(await a.next(), [8, CHAT, 'last']);
    assert.ok(await a.nothing());
    assert.ok(await b.nothing());
    a.close();
    b.close();
  } finally {
    await server.close();
  }
});
