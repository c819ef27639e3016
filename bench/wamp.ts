/**
 * WAMP publish fan-out beside plain fan-out: `npm run bench:wamp -- [subscribers] [publishes]`.
 *
 * One process (server and clients alike, so the numbers are for comparing
 * the modes with each other, not absolute): N subscribers and one publisher
 * on a resound server, the publisher sends P messages of the same payload in
 * a burst, and the time until every subscriber got all of them is measured:
 *   - plain: a route whose handler does conn.publish(topic, message);
 *   - wamp: PUBLISH [7, topic, event, true] (excludeMe) through wamp()'s
 *     pipeline, out through the server's TopicRegistry;
 *   - wamp-eligible: PUBLISH [7, topic, event, [], [every subscriber]],
 *     filtered per session by the app's own registry.
 * Short runs; the median of 3 is reported.
 */
import { connect, Server, speak, wamp, type WSConnection } from '../lib/index.js';

const subscribers = Number(process.argv[2] ?? 100);
const publishes = Number(process.argv[3] ?? 2000);
const TOPIC = 'http://bench.example/topic';
const EVENT = { text: 'x'.repeat(64), n: 1 };

const app = wamp();
const server = new Server(null, { pingInterval: 0 })
  .route('/plain', {
    onOpen: (conn) => conn.subscribe(TOPIC),
    onMessage: (conn, message) => void conn.publish(TOPIC, message),
  })
  .route('/wamp', ...speak([app]));
await server.listen('127.0.0.1', 0);

type Mode = 'plain' | 'wamp' | 'wamp-eligible';

async function run(mode: Mode): Promise<number> {
  const path = mode === 'plain' ? '/plain' : '/wamp';
  const options = mode === 'plain' ? {} : { subprotocols: ['wamp'] };
  let received = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const target = subscribers * publishes;
  const ids: string[] = [];
  const welcomes: Array<Promise<void>> = [];
  const conns: WSConnection[] = [];
  for (let i = 0; i < subscribers; i++) {
    let welcomed: () => void = () => {};
    welcomes.push(new Promise((resolve) => (welcomed = resolve)));
    let first = mode !== 'plain';
    conns.push(
      await connect(`${server.url}${path}`, {
        ...options,
        pingInterval: 0,
        handler: {
          onMessage(_conn, message) {
            if (first) {
              first = false;
              ids.push(JSON.parse(String(message))[1]);
              return welcomed();
            }
            if (++received === target) done();
          },
        },
      }),
    );
    if (mode === 'plain') welcomed();
  }
  await Promise.all(welcomes);
  const publisher = await connect(`${server.url}${path}`, { ...options, pingInterval: 0, handler: { onMessage() {} } });
  if (mode !== 'plain') {
    for (const conn of conns) await conn.sendText(JSON.stringify([5, TOPIC]));
    while (app.subscriberCount(TOPIC) < subscribers) await new Promise((r) => setTimeout(r, 5));
  }
  const message =
    mode === 'plain'
      ? JSON.stringify([8, TOPIC, EVENT])
      : mode === 'wamp'
        ? JSON.stringify([7, TOPIC, EVENT, true])
        : JSON.stringify([7, TOPIC, EVENT, [], ids]);
  const start = performance.now();
  for (let i = 0; i < publishes; i++) void publisher.sendText(message);
  await finished;
  const seconds = (performance.now() - start) / 1000;
  publisher.close();
  for (const conn of conns) conn.close();
  await new Promise((r) => setTimeout(r, 200));
  return target / seconds;
}

console.log(`${subscribers} subscribers, ${publishes} publishes of a ${JSON.stringify(EVENT).length}-byte event`);
for (const mode of ['plain', 'wamp', 'wamp-eligible'] as Mode[]) {
  const rates: number[] = [];
  for (let i = 0; i < 3; i++) rates.push(await run(mode));
  rates.sort((a, b) => a - b);
  console.log(`${mode.padEnd(14)} ${Math.round(rates[1]!).toLocaleString('en-US').padStart(12)} deliveries/s (runs: ${rates.map((r) => Math.round(r / 1000) + 'k').join(', ')})`);
}
await server.close();
