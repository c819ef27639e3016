/** Route patterns (lib/server/routes.ts): exact paths, :params, decoding, refusals. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Router } from '../../lib/server/routes.js';

test('exact paths and :params match; params are percent-decoded; the first matching pattern wins', () => {
  const router = new Router<string>();
  router.add('/chat', 'chat');
  router.add('/rooms/:room', 'room');
  router.add('/rooms/:room/users/:user', 'user');
  router.add('/rooms/lobby', 'lobby');
  router.add('/:any/x', 'any');
  assert.deepEqual(router.match('/chat'), { value: 'chat', params: {} });
  assert.deepEqual(router.match('/rooms/lobby'), { value: 'lobby', params: {} }, 'an exact path before a pattern');
  assert.deepEqual(router.match('/rooms/blue%20sky'), { value: 'room', params: { room: 'blue sky' } });
  assert.deepEqual(router.match('/rooms/a/users/b'), { value: 'user', params: { room: 'a', user: 'b' } });
  assert.deepEqual(router.match('/q/x'), { value: 'any', params: { any: 'q' } });
  assert.equal(router.match('/chat/'), null, 'a trailing slash is another path');
  assert.equal(router.match('/rooms/'), null, 'a parameter is never empty');
  assert.equal(router.match('/rooms/a/b'), null);
  assert.equal(router.match('/rooms/%E0%A4%A'), null, 'a malformed escape matches nothing');
  assert.equal(router.match('/nowhere'), null);
  assert.deepEqual(router.patternList, ['/chat', '/rooms/lobby', '/rooms/:room', '/rooms/:room/users/:user', '/:any/x']);
});

test('malformed and repeated patterns are refused when added', () => {
  const router = new Router<number>();
  router.add('/a/:id', 1);
  assert.throws(() => router.add('a', 2), /starting with "\/"/);
  assert.throws(() => router.add('/a?x=1', 2), /without query/);
  assert.throws(() => router.add('/a/:1x', 2), /bad parameter name/);
  assert.throws(() => router.add('/a/:id/:id', 2), /twice/);
  assert.throws(() => router.add('/a/:id', 2), /already defined/);
});
