/**
 * redisBrokerFromUrl where neither client library can be found (the module
 * hooks of hide-redis-hooks.ts hide them; run it from a folder without
 * node_modules):
 *
 *   node dist/spec/broker/redis-missing-child.js [redis|ioredis]
 *
 * Prints what it got as one JSON line: the error's name and message, or
 * `{ "made": true }` if a broker was made after all.
 */
import { register } from 'node:module';
import { redisBrokerFromUrl, type RedisLibrary } from '../../lib/broker/redis-url.js';

register('./hide-redis-hooks.js', import.meta.url);

const library = process.argv[2] as RedisLibrary | undefined;
try {
  await redisBrokerFromUrl('redis://127.0.0.1:1', library === undefined ? {} : { library });
  process.stdout.write(`${JSON.stringify({ made: true })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ name: (error as Error).name, message: (error as Error).message })}\n`);
}
