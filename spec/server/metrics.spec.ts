import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server as HttpServer } from 'node:http';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { attach, connect, jsonLogger, lineLogger, listenMetrics, METRICS_CONTENT_TYPE, reject, renderMetrics, serve, type LogRecord, type Server } from '../../lib/index.js';
import { PYTHON, until } from '../support.js';

const run = promisify(execFile);

/** curl, as an operator (or a scraper) would fetch the page. */
async function curl(url: string): Promise<{ status: number; type: string; body: string }> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', '-w', '\n%{http_code} %{content_type}', url]);
  const cut = stdout.lastIndexOf('\n');
  const [status, ...type] = stdout.slice(cut + 1).split(' ');
  return { status: Number(status), type: type.join(' '), body: stdout.slice(0, cut) };
}

/** The Prometheus project's own text parser (python3-prometheus-client): samples by name and labels. */
async function parseWithPrometheus(text: string): Promise<Map<string, number>> {
  const script = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        labels = ",".join(f'{k}={v}' for k, v in sorted(sample.labels.items()))
        out[sample.name + "{" + labels + "}"] = sample.value
print(json.dumps(out))
`;
  const child = execFile(PYTHON, ['-c', script]);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(text);
  const [code] = (await once(child, 'close')) as [number];
  assert.equal(code, 0, `the Prometheus parser refused the text: ${stderr}`);
  return new Map(Object.entries(JSON.parse(stdout) as Record<string, number>));
}

describe('server.stats()', () => {
  it('counts handshakes by outcome, messages and bytes both ways, close codes', async () => {
    const server = await serve(
      {
        onMessage: async (conn, message) => {
          if (message === 'bye') conn.close(4000, 'asked');
          else await conn.send(message);
        },
      },
      '127.0.0.1',
      0,
      // Uncompressed, so that the byte counts follow the payloads.
      { path: '/echo', perMessageDeflate: false, authorize: (req) => (req.request.headers['x-no'] ? reject(401, 'no') : undefined) },
    );
    try {
      const empty = server.stats();
      assert.deepEqual(empty.handshakes, { accepted: 0, refused: {}, abandoned: 0 });
      assert.equal(empty.connections, 0);

      const a = await connect(`${server.url}/echo`);
      const b = await connect(`${server.url}/echo`);
      await a.send('hello');
      assert.equal(await a.receive(), 'hello');
      await b.send(Buffer.alloc(1000, 7));
      assert.equal((await b.receive()).length, 1000);
      await assert.rejects(connect(`${server.url}/nowhere`), /404/);
      await assert.rejects(connect(`${server.url}/echo`, { headers: [['x-no', '1']] }), /401/);
      // A socket that leaves without a handshake.
      const raw = netConnect(server.address().port, '127.0.0.1');
      await once(raw, 'connect');
      raw.destroy();
      await until(() => server.stats().handshakes.abandoned === 1, 'the abandoned socket to be counted');

      let stats = server.stats();
      assert.equal(stats.connections, 2);
      assert.equal(stats.handshakes.accepted, 2);
      assert.deepEqual(stats.handshakes.refused, { 401: 1, 404: 1 });
      assert.deepEqual(stats.messages, { received: 2, sent: 2 });
      assert.ok(stats.bytes.received > 1005 && stats.bytes.sent > 1005, JSON.stringify(stats.bytes));

      await a.send('bye');
      await a.closed;
      b.close(1000);
      await b.closed;
      await until(() => server.stats().connections === 0, 'both to close');
      stats = server.stats();
      assert.deepEqual(stats.closeCodes, { 1000: 1, 4000: 1 });
      assert.equal(stats.messages.received, 3);
      assert.deepEqual(stats.pings, { sent: 0, timedOut: 0 });
      assert.deepEqual(stats.dropped, { overBuffer: 0, sendTimeout: 0 });
    } finally {
      await server.close();
    }
  });

  it('counts a slow reader dropped over maxBufferedAmount, and a publish once per subscriber', async () => {
    const server = await serve({ onOpen: (conn) => conn.subscribe('t') }, '127.0.0.1', 0, { maxBufferedAmount: 64 * 1024, pauseReadingAt: 32 * 1024 });
    try {
      const readers = await Promise.all([connect(server.url), connect(server.url), connect(server.url)]);
      await until(() => server.subscriberCount('t') === 3, 'subscribers');
      assert.equal(server.publish('t', 'x'), 3);
      for (const reader of readers) assert.equal(await reader.receive(), 'x');
      assert.equal(server.stats().messages.sent, 3);
      // A peer that never reads: its queue passes 64 KiB.
      const stuck = netConnect(server.address().port, '127.0.0.1');
      stuck.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      stuck.pause();
      await until(() => server.subscriberCount('t') === 4, 'the stuck subscriber');
      const big = Buffer.alloc(256 * 1024);
      for (let i = 0; i < 64 && server.stats().dropped.overBuffer === 0; i++) {
        server.publish('t', big);
        await new Promise((resolve) => setImmediate(resolve));
        for (const reader of readers) await reader.receive();
      }
      assert.equal(server.stats().dropped.overBuffer, 1);
      stuck.destroy();
      for (const reader of readers) reader.close();
    } finally {
      await server.close();
    }
  });
});

describe('Prometheus metrics', () => {
  let http: HttpServer;
  let server: Server;
  let base: string;

  before(async () => {
    http = createServer((_req, res) => res.end('the app'));
    server = attach(http, (conn, message) => conn.send(message), { metricsPath: '/metrics' });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const address = http.address();
    assert.ok(address !== null && typeof address === 'object');
    base = `127.0.0.1:${address.port}`;
  });
  after(async () => {
    await server.close();
    http.close();
  });

  it('curl on /metrics of the attached HTTP server gets text the Prometheus parser accepts, and the app keeps its other paths', async () => {
    const page = await curl(`http://${base}/metrics`);
    assert.equal(page.status, 200);
    assert.equal(page.type, METRICS_CONTENT_TYPE);
    const samples = await parseWithPrometheus(page.body);
    assert.equal(samples.get('resound_connections{}'), 0);
    assert.equal(samples.get('resound_handshakes_total{result=accepted}'), 0);
    const app = await curl(`http://${base}/other`);
    assert.equal(app.body, 'the app');
  });

  it('the counters move as connections come and go', async () => {
    const before = await parseWithPrometheus((await curl(`http://${base}/metrics`)).body);
    const clients = await Promise.all([connect(`ws://${base}/`), connect(`ws://${base}/`)]);
    await clients[0]!.send('one');
    await clients[0]!.receive();
    // An old draft's version: refused with 426.
    const old = netConnect(Number(base.split(':')[1]), '127.0.0.1');
    old.end('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n');
    old.resume();
    await once(old, 'close');
    await until(() => server.stats().handshakes.refused[426] === 1, 'the 426 to be counted');
    let samples = await parseWithPrometheus((await curl(`http://${base}/metrics`)).body);
    assert.equal(samples.get('resound_connections{}'), 2);
    assert.equal(samples.get('resound_handshakes_total{result=accepted}'), before.get('resound_handshakes_total{result=accepted}')! + 2);
    assert.equal(samples.get('resound_handshakes_total{result=refused,status=426}'), 1);
    assert.ok(samples.get('resound_messages_received_total{}')! >= 1);
    assert.ok(samples.get('resound_bytes_sent_total{}')! > 0);
    for (const client of clients) client.close(1000);
    await until(() => server.connections.size === 0, 'the closes');
    samples = await parseWithPrometheus((await curl(`http://${base}/metrics`)).body);
    assert.equal(samples.get('resound_connections{}'), 0);
    assert.equal(samples.get('resound_closes_total{code=1000}'), 2);
  });

  it('HEAD answers without a body; other methods get 405', async () => {
    const head = await run('curl', ['-sS', '-I', `http://${base}/metrics`]);
    assert.match(head.stdout, /^HTTP\/1\.1 200/);
    const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', `http://${base}/metrics`]);
    assert.equal(stdout, '405');
  });

  it('on a port of its own with listenMetrics, and after server.close() the app gets /metrics back', async () => {
    const other = await serve(() => {}, '127.0.0.1', 0);
    const metrics = await listenMetrics(other, '127.0.0.1', 0);
    try {
      const address = metrics.address();
      assert.ok(address !== null && typeof address === 'object');
      const page = await curl(`http://127.0.0.1:${address.port}/metrics`);
      assert.equal(page.status, 200);
      await parseWithPrometheus(page.body);
      assert.equal((await curl(`http://127.0.0.1:${address.port}/`)).status, 404);
    } finally {
      metrics.close();
      await other.close();
    }
    const plain = createServer((_req, res) => res.end('app'));
    const detached = attach(plain, () => {}, { metricsPath: '/metrics' });
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    const port = (plain.address() as { port: number }).port;
    assert.equal((await curl(`http://127.0.0.1:${port}/metrics`)).status, 200);
    await detached.close();
    assert.equal((await curl(`http://127.0.0.1:${port}/metrics`)).body, 'app');
    plain.close();
  });

  it('renderMetrics escapes nothing it should not and ends with a newline', () => {
    const text = renderMetrics(server.stats(), 'x_');
    assert.ok(text.endsWith('\n'));
    assert.match(text, /^# HELP x_connections /m);
    assert.match(text, /^# TYPE x_closes_total counter$/m);
  });
});

describe('the logger hook', () => {
  it('is silent by default and says open, refused and close with their fields at info', async () => {
    const records: LogRecord[] = [];
    const server = await serve((conn, message) => conn.send(message), '127.0.0.1', 0, {
      path: '/chat',
      subprotocols: ['chat'],
      logger: { level: 'info', log: (record) => records.push(record) },
    });
    try {
      const client = await connect(`${server.url}/chat`, { subprotocols: ['chat'] });
      await assert.rejects(connect(`${server.url}/elsewhere`));
      client.close(1000, 'done');
      await client.closed;
      await until(() => records.some((r) => r.event === 'close') && records.some((r) => r.event === 'refused'), 'the records');
      const open = records.find((r) => r.event === 'open')!;
      assert.equal(open.level, 'info');
      assert.equal(open.remoteAddress, '127.0.0.1');
      assert.equal(open.path, '/chat');
      assert.equal(open.subprotocol, 'chat');
      assert.ok(typeof open.remotePort === 'number' && open.remotePort > 0);
      const refused = records.find((r) => r.event === 'refused')!;
      assert.equal(refused.status, 404);
      assert.equal(refused.path, '/elsewhere');
      const close = records.find((r) => r.event === 'close')!;
      assert.equal(close.code, 1000);
      assert.equal(close.reason, 'done');
      assert.equal(close.path, '/chat');
    } finally {
      await server.close();
    }
  });

  it('levels filter: a warn logger hears a keepalive timeout but not opens and closes', async () => {
    const records: LogRecord[] = [];
    const server = await serve(() => {}, '127.0.0.1', 0, { pingInterval: 100, pingTimeout: 100, logger: { level: 'warn', log: (record) => records.push(record) } });
    try {
      const raw = netConnect(server.address().port, '127.0.0.1');
      raw.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      raw.on('error', () => {});
      await until(() => records.length > 0, 'the timeout record', 3000);
      assert.deepEqual(
        records.map((r) => [r.level, r.event]),
        [['warn', 'ping-timeout']],
      );
      assert.equal(records[0]!.remoteAddress, '127.0.0.1');
      raw.destroy();
    } finally {
      await server.close();
    }
  });

  it('a handler error is logged at error level with the error; a logger that throws breaks nothing', async () => {
    const records: LogRecord[] = [];
    let calls = 0;
    const server = await serve(
      {
        onMessage: () => {
          throw new Error('boom');
        },
        onError: () => {},
      },
      '127.0.0.1',
      0,
      {
        logger: {
          level: 'debug',
          log: (record) => {
            calls++;
            records.push(record);
            if (record.event === 'open') throw new Error('logger bug');
          },
        },
      },
    );
    const originalError = console.error;
    console.error = () => {};
    try {
      const client = await connect(server.url);
      await client.send('x');
      const info = await client.closed;
      assert.equal(info.code, 1011);
      await until(() => records.some((r) => r.event === 'handler-error'), 'the error record');
      const error = records.find((r) => r.event === 'handler-error')!;
      assert.equal(error.level, 'error');
      assert.match(String(error.error?.message), /boom/);
      assert.ok(calls >= 2);
    } finally {
      console.error = originalError;
      await server.close();
    }
  });

  it('lineLogger writes one key=value line per record; jsonLogger one JSON object', () => {
    const lines: string[] = [];
    const line = lineLogger('info', (text) => lines.push(text));
    line.log({ level: 'info', event: 'close', message: 'closed with 1000', remoteAddress: '127.0.0.1', code: 1000, reason: 'bye now' });
    assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT\S+ INFO close: closed with 1000 remoteAddress=127\.0\.0\.1 code=1000 reason="bye now"$/);
    const json = jsonLogger('debug', (text) => lines.push(text));
    json.log({ level: 'error', event: 'error', message: 'x', error: new Error('bad') });
    const parsed = JSON.parse(lines[1]!) as Record<string, unknown>;
    assert.equal(parsed['event'], 'error');
    assert.equal(parsed['error'], 'bad');
    assert.equal(json.level, 'debug');
  });
});
