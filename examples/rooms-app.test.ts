// A user's test of examples/rooms-app.ts, written with resound/testing and node:test.
// Run alone: npm run build && node --test dist/examples/rooms-app.test.js
// (npm test runs it through spec/testing/example.spec.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, HandshakeError } from 'resound';
import { testClient, withServer } from 'resound/testing';
import { createApp } from './rooms-app.js';

const asAlice = { Authorization: 'Bearer t-alice' };
const asBob = { Authorization: 'Bearer t-bob' };

test('rooms app: members of a room hear each other, and nobody else', async () => {
  const app = createApp();
  const alice = await testClient(app, { path: '/rooms/lobby', headers: asAlice });
  assert.equal(await alice.receive(), 'welcome alice to lobby');
  const bob = await testClient(app, { path: '/rooms/lobby', headers: asBob });
  assert.equal(await bob.receive(), 'welcome bob to lobby');
  const elsewhere = await testClient(app, { path: '/rooms/attic', headers: asBob });
  assert.equal(await elsewhere.receive(), 'welcome bob to attic');

  await alice.send('hi bob');
  assert.equal(await bob.receive(), 'alice: hi bob');
  await elsewhere.send('anyone up here?');
  await bob.send('hi alice');
  assert.equal(await alice.receive(), 'bob: hi alice', 'the attic is another room');

  // close() resolves once both ends are closed: nothing is left in the app.
  await Promise.all([alice.close(), bob.close(), elsewhere.close()]);
  assert.equal(app.connections.size, 0);
});

test('rooms app: an unknown token is refused with 401 before any WebSocket opens', async () => {
  await assert.rejects(testClient(createApp(), { path: '/rooms/lobby', headers: { Authorization: 'Bearer guess' } }), (error) => {
    assert.ok(error instanceof HandshakeError);
    assert.equal(error.status, 401);
    assert.equal(error.headers['www-authenticate'], 'Bearer');
    assert.equal(Buffer.from(error.body).toString().trim(), 'unknown token');
    return true;
  });
});

test('rooms app: binary messages and messages over 4 KiB close the connection', async () => {
  const app = createApp();
  const alice = await testClient(app, { path: '/rooms/lobby', headers: asAlice });
  assert.equal(alice.serverConnection.data.name, 'alice');
  await alice.receive();
  await alice.send(new Uint8Array([1, 2, 3]));
  assert.deepEqual(await alice.closed, { code: 1003, reason: 'text only' });

  const bob = await testClient(app, { path: '/rooms/lobby', headers: asBob });
  await bob.receive();
  void bob.send('x'.repeat(5000));
  assert.equal((await bob.closed).code, 1009);
});

test('rooms app: the same server on a real port, for any client', async () => {
  await withServer(createApp(), async (url) => {
    const conn = await connect(`${url}/rooms/lobby`, { headers: asBob });
    assert.equal(await conn.receive(), 'welcome bob to lobby');
    conn.close();
    await conn.closed;
  });
});
