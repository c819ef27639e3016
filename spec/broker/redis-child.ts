/**
 * A resound server with a Redis broker, in a process of its own, for the
 * Redis broker specs (see ChildServer in redis-support.ts):
 *
 *   node dist/spec/broker/redis-child.js redis|ioredis redis://127.0.0.1:PORT
 *
 * Prints `port N` once it listens on 127.0.0.1. A connection opened with
 * `?sub=a&sub=b` is subscribed to a and b; with `?pub=topic`, each of its
 * messages is published to that topic (conn.publish: every subscriber but
 * itself, here and in the other processes). Over IPC: 'stats' answers the
 * broker's figures, 'close' closes the server and the client, then exits.
 */
import { serve } from '../../lib/index.js';
import { redisBroker } from '../../lib/broker/redis.js';
import { appClient, queryRoom, type Library } from './redis-support.js';

const [library, url] = process.argv.slice(2) as [Library, string];
const app = appClient(library, url);
const server = await serve(
  queryRoom,
  '127.0.0.1',
  0,
  { broker: redisBroker(app.client) },
);

process.on('message', (message: { request: string }) => {
  if (message.request === 'stats') {
    process.send!({ reply: 'stats', value: server.stats().broker });
  } else if (message.request === 'close') {
    void server
      .close()
      .then(() => app.quit())
      .then(() => {
        process.send!({ reply: 'close' }, () => process.disconnect());
      });
  }
});

process.stdout.write(`port ${server.address().port}\n`);
