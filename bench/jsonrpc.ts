// JSON-RPC calls per second beside the plain echo of the same run: a resound
// server in a child process with two routes (/echo echoes; /rpc speaks
// jsonrpc with a schema-checked `echo`), and one client connection here per
// scenario, 1 call in flight and pipelined (64 in flight). The raw client
// sends the same request text to both routes (the server's cost of JSON-RPC);
// connectJsonRpc's rows add the client's (one promise and write per call).
// Run: npm run bench:jsonrpc [seconds per scenario, default 2]
import { fork } from 'node:child_process';
import { Server, connect, connectJsonRpc, jsonRpc, method, speak } from '../lib/index.js';

if (process.argv[2] === 'serve') {
  const server = new Server(null, {});
  server.route('/echo', (conn, message) => conn.send(message));
  server.route('/rpc', ...speak([jsonRpc({ echo: method({ message: 'string' }, ({ message }) => message) }, { maxInFlight: 1024 })]));
  await server.listen('127.0.0.1', 0);
  process.send!(server.address().port);
  process.once('disconnect', () => void server.close().then(() => process.exit(0)));
} else {
  const seconds = Number(process.argv[2] ?? 2);
  const child = fork(new URL(import.meta.url).pathname, ['serve']);
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
  const base = `ws://127.0.0.1:${port}`;
  const request = (id: number): string => `{"jsonrpc":"2.0","method":"echo","params":["hello"],"id":${id}}`;

  /** A raw client: `path` answers each request text with one message; the next request goes out from onMessage. */
  async function plain(window: number, path = '/echo'): Promise<number> {
    let done = 0;
    let stop = false;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let outstanding = 0;
    const conn = await connect(`${base}${path}`, {
      subprotocols: path === '/rpc' ? ['jsonrpc'] : [],
      handler: {
        onMessage(c) {
          done++;
          outstanding--;
          if (!stop) {
            outstanding++;
            void c.sendText(request(done));
          } else if (outstanding === 0) finish();
        },
      },
    });
    for (let i = 0; i < window; i++, outstanding++) void conn.sendText(request(i));
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    stop = true;
    await finished;
    conn.close();
    return done / seconds;
  }

  async function rpc(window: number): Promise<number> {
    const client = await connectJsonRpc(`${base}/rpc`);
    let done = 0;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        await client.call('echo', ['hello']);
        done++;
      }
    };
    const workers = Array.from({ length: window }, worker);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    stop = true;
    await Promise.all(workers);
    client.close();
    return done / seconds;
  }

  const rows: Array<[string, number]> = [];
  for (const window of [1, 64]) {
    rows.push([`plain echo, ${window} in flight`, await plain(window)]);
    rows.push([`JSON-RPC, raw client, ${window} in flight`, await plain(window, '/rpc')]);
    rows.push([`JSON-RPC, connectJsonRpc, ${window} in flight`, await rpc(window)]);
  }
  console.log(`node ${process.version}, ${seconds} s per scenario, one connection`);
  for (const [name, rate] of rows) console.log(`${name.padEnd(36)} ${Math.round(rate).toLocaleString('en-US').padStart(10)} /s`);
  child.disconnect();
}
