/**
 * The `resound` CLI as a user runs it: `resound echo` and `resound room` in a child process
 * (port 0 prints the real URL), SIGTERM shuts it down cleanly, `--help`
 * prints usage, the keepalive, logging, metrics and --no-compression flags;
 * and the echo server's peak memory for a 16 MiB message.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { connect } from '../../lib/index.js';
import { processMemory, resetPeakMemory, selfSignedCertificate } from '../support.js';
import {
  assertSameBytes,
  clientFrame,
  closeOf,
  delay,
  handshakeRequest,
  MiB,
  patternBytes,
  RawPeer,
  reapCli as reap,
  runCli as run,
  startEchoCli as startEcho,
  until,
  withTimeout,
  WSClient,
} from './helpers.js';

test('resound echo --port 0: prints the real URL, echoes, exits 0 on SIGTERM', { timeout: 20_000 }, async (t) => {
  const { child, url } = await startEcho(t);
  const client = await WSClient.connect(url);
  assert.equal(await client.echo('hello ✓ 😀'), 'hello ✓ 😀');
  const data = patternBytes(100_000, 3);
  assertSameBytes((await client.echo(data)) as Buffer, data, 'binary echo through the CLI');

  child.proc.kill('SIGTERM');
  // The open connection is closed with 1001, then the process exits 0.
  const closed = await withTimeout(client.closed, 5000, 'client close on SIGTERM');
  assert.equal(closed.code, 1001);
  const exit = await withTimeout(child.exited, 8000, 'resound echo to exit after SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${child.stderr()}`);
  assert.equal(child.stderr(), '');
});

test('resound room: a message from one client reaches every client, the sender too', { timeout: 20_000 }, async (t) => {
  const { child, url } = await startEcho(t, [], 'room');
  assert.match(child.stdout(), /resound room server listening on ws:/);
  const clients = [await WSClient.connect(url), await WSClient.connect(url), await WSClient.connect(url)];
  // Each client opens before the next connects, but its subscription is made in onOpen on the
  // server: a round trip through the room proves all three are in before the real test.
  clients[2]!.send('ready?');
  for (const client of clients) assert.equal(await client.next(), 'ready?');

  clients[0]!.send('hello from 0 ✓');
  for (const client of clients) assert.equal(await client.next(), 'hello from 0 ✓');
  const data = patternBytes(70_000, 11);
  clients[1]!.send(data);
  for (const client of clients) assertSameBytes((await client.next()) as Buffer, data, 'binary through the room');

  await clients[2]!.close(1000);
  clients[0]!.send('two left');
  for (const client of clients.slice(0, 2)) assert.equal(await client.next(), 'two left');
  child.proc.kill('SIGTERM');
  const exit = await withTimeout(child.exited, 8000, 'resound room to exit after SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${child.stderr()}`);
});

test('resound echo exits 0 on SIGINT too', { timeout: 15_000 }, async (t) => {
  const { child, url } = await startEcho(t);
  const client = await WSClient.connect(url);
  assert.equal(await client.echo('before SIGINT'), 'before SIGINT');
  child.proc.kill('SIGINT');
  assert.equal((await withTimeout(client.closed, 5000, 'client close on SIGINT')).code, 1001);
  const exit = await withTimeout(child.exited, 8000, 'exit after SIGINT');
  assert.deepEqual(exit, { code: 0, signal: null });
});

test('resound --help prints usage and exits 0', { timeout: 10_000 }, async (t) => {
  for (const args of [['--help'], ['-h'], ['echo', '--help']]) {
    const child = run(args);
    reap(t, child);
    const exit = await withTimeout(child.exited, 8000, `resound ${args.join(' ')}`);
    assert.deepEqual(exit, { code: 0, signal: null }, `resound ${args.join(' ')}: ${child.stderr()}`);
    assert.match(child.stdout(), /Usage:/);
    assert.match(child.stdout(), /resound echo/);
    assert.match(child.stdout(), /--port/);
    assert.match(child.stdout(), /--no-compression/);
  }
});

test('resound with no command or an unknown one fails with usage', { timeout: 10_000 }, async (t) => {
  const none = run([]);
  reap(t, none);
  const noneExit = await withTimeout(none.exited, 8000, 'resound');
  assert.ok(noneExit.code !== 0 && noneExit.code !== null, `resound without a command exited ${noneExit.code}`);
  assert.match(none.stdout() + none.stderr(), /Usage:/);

  const unknown = run(['frobnicate']);
  reap(t, unknown);
  const unknownExit = await withTimeout(unknown.exited, 8000, 'resound frobnicate');
  assert.ok(unknownExit.code !== 0 && unknownExit.code !== null, `resound frobnicate exited ${unknownExit.code}`);
  assert.match(unknown.stderr(), /unknown command "frobnicate"/);

  const badPort = run(['echo', '--port', 'eighty']);
  reap(t, badPort);
  const exit = await withTimeout(badPort.exited, 8000, 'resound echo --port eighty');
  assert.notEqual(exit.code, 0);
  assert.match(badPort.stderr(), /port/);
});

test('resound echo --read-buffer-size: 0 (Node reads) and a small shared buffer both echo; a bad size fails', { timeout: 20_000 }, async (t) => {
  for (const size of ['0', '1024']) {
    const { child, url } = await startEcho(t, ['--read-buffer-size', size]);
    const client = await WSClient.connect(url);
    const data = patternBytes(300_000, 5);
    assertSameBytes((await client.echo(data)) as Buffer, data, `binary echo with --read-buffer-size ${size}`);
    assert.equal(await client.echo('text ✓'), 'text ✓');
    child.proc.kill('SIGTERM');
    assert.deepEqual(await withTimeout(child.exited, 8000, 'resound echo to exit'), { code: 0, signal: null });
  }
  const bad = run(['echo', '--port', '0', '--read-buffer-size', '-5']);
  reap(t, bad);
  const exit = await withTimeout(bad.exited, 8000, 'resound echo --read-buffer-size -5');
  assert.notEqual(exit.code, 0);
  assert.match(bad.stderr(), /read-buffer-size/);
});

test('resound echo --max-fragments 2 refuses a message in 3 frames with 1008; bad --max-fragments and --send-timeout fail', { timeout: 20_000 }, async (t) => {
  const { child, url } = await startEcho(t, ['--max-fragments', '2', '--send-timeout', '5']);
  const port = Number(new URL(url).port);
  const peer = await RawPeer.open(port);
  peer.write(Buffer.concat([clientFrame(0x1, 'a', { fin: false }), clientFrame(0x0, 'b')]));
  assert.equal((await peer.nextFrame()).payload.toString(), 'ab', 'two frames are fine');
  peer.write(Buffer.concat([clientFrame(0x1, 'a', { fin: false }), clientFrame(0x0, 'b', { fin: false }), clientFrame(0x0, 'c')]));
  assert.equal(closeOf(await peer.nextFrame()).code, 1008);
  peer.destroy();
  child.proc.kill('SIGTERM');
  assert.deepEqual(await withTimeout(child.exited, 8000, 'resound echo to exit'), { code: 0, signal: null });
  for (const [flag, value] of [['--max-fragments', '1.5'], ['--send-timeout', 'soon']] as const) {
    const bad = run(['echo', '--port', '0', flag, value]);
    reap(t, bad);
    const exit = await withTimeout(bad.exited, 8000, `resound echo ${flag} ${value}`);
    assert.notEqual(exit.code, 0);
    assert.match(bad.stderr(), new RegExp(flag));
  }
});

test('resound echo --tls-cert --tls-key serves wss://; one without the other fails', { timeout: 30_000 }, async (t) => {
  const { certPath, keyPath, cert } = selfSignedCertificate();
  const child = run(['echo', '--port', '0', '--tls-cert', certPath, '--tls-key', keyPath]);
  reap(t, child);
  const url = await withTimeout(
    new Promise<string>((resolve) => {
      const check = (): void => {
        const match = /listening on (wss:\/\/127\.0\.0\.1:\d+)/.exec(child.stdout());
        if (match) resolve(match[1]!);
      };
      child.proc.stdout.on('data', check);
      check();
    }),
    10_000,
    'resound echo to print its wss:// URL',
  );
  const conn = await connect(url, { ca: cert });
  await conn.sendText('over tls');
  assert.equal(await withTimeout(conn.receive(), 5000, 'echo'), 'over tls');
  conn.close();
  await withTimeout(conn.closed, 5000, 'close');
  child.proc.kill('SIGTERM');
  assert.deepEqual(await withTimeout(child.exited, 8000, 'exit'), { code: 0, signal: null });
  const half = run(['echo', '--port', '0', '--tls-cert', certPath]);
  reap(t, half);
  assert.notEqual((await withTimeout(half.exited, 8000, 'exit')).code, 0);
  assert.match(half.stderr(), /--tls-cert and --tls-key go together/);
});

test('resound echo --verbose: one line per connection on stderr (open, close), from the server\'s logger', { timeout: 15_000 }, async (t) => {
  const { child, url } = await startEcho(t, ['--verbose']);
  const client = await WSClient.connect(`${url}/here`);
  assert.equal(await client.echo('logged'), 'logged');
  await client.close(1000, 'bye');
  await until(() => /INFO close: /.test(child.stderr()), 'the close line');
  assert.match(child.stderr(), /^\S+Z INFO open: connection open remoteAddress=127\.0\.0\.1 remotePort=\d+ path=\/here/m);
  assert.match(child.stderr(), /^\S+Z INFO close: closed with 1000 .*reason=bye/m);
  child.proc.kill('SIGTERM');
  assert.deepEqual(await withTimeout(child.exited, 8000, 'exit'), { code: 0, signal: null });
});

test('resound echo and room --metrics-port: Prometheus text on http://host:N/metrics, its URL printed', { timeout: 15_000 }, async (t) => {
  for (const command of ['echo', 'room']) {
    const { child, url } = await startEcho(t, ['--metrics-port', '0'], command);
    const metricsUrl = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(child.stdout())?.[1];
    assert.ok(metricsUrl, `${command}: the metrics URL in ${JSON.stringify(child.stdout())}`);
    const client = await WSClient.connect(url);
    assert.equal(await client.echo('counted'), 'counted');
    const response = await fetch(metricsUrl);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(text, /^resound_connections 1$/m, command);
    assert.match(text, /^resound_messages_received_total 1$/m, command);
    child.proc.kill('SIGTERM');
    assert.equal((await withTimeout(client.closed, 5000, 'close')).code, 1001);
    assert.deepEqual(await withTimeout(child.exited, 8000, 'exit'), { code: 0, signal: null });
  }
});

test('resound echo --ping-interval and --idle-timeout (seconds): an idle client is pinged, then closed with 1001', { timeout: 15_000 }, async (t) => {
  const { child, url } = await startEcho(t, ['--ping-interval', '0.1', '--ping-timeout', '0.1', '--idle-timeout', '0.6']);
  let pings = 0;
  const started = performance.now();
  const conn = await connect(`${url}/`, { pingInterval: 0, handler: { onPing: () => void pings++ } });
  const { code } = await withTimeout(conn.closed, 5000, 'the idle timeout');
  const waited = performance.now() - started;
  assert.equal(code, 1001);
  // A ping goes out 0.1 s after the last thing received; the pong is seen when its 0.1 s are up.
  assert.ok(pings >= 2, `pinged ${pings} times while idle (about every 0.2 s for 0.6 s)`);
  assert.ok(waited >= 500, `closed after ${waited.toFixed(0)} ms of idleness, not before 0.6 s`);
  child.proc.kill('SIGTERM');
  assert.deepEqual(await withTimeout(child.exited, 8000, 'exit'), { code: 0, signal: null });
});

test('bad --ping-interval, --ping-timeout, --idle-timeout and --metrics-port values fail naming the flag', { timeout: 15_000 }, async (t) => {
  const cases = [['--ping-interval', 'soon'], ['--ping-timeout', '-1'], ['--idle-timeout', ''], ['--metrics-port', '70000']] as const;
  await Promise.all(
    cases.map(async ([flag, value]) => {
      const bad = run(['echo', '--port', '0', `${flag}=${value}`]);
      reap(t, bad);
      const exit = await withTimeout(bad.exited, 8000, `resound echo ${flag} ${value}`);
      assert.equal(exit.code, 1, `${flag} ${value}`);
      assert.match(bad.stderr(), new RegExp(`^resound: bad ${flag} `, 'm'));
      assert.equal(bad.stdout(), '', 'nothing listened');
    }),
  );
});

test('resound echo and room agree on permessage-deflate by default; --no-compression declines the offer', { timeout: 20_000 }, async (t) => {
  const text = 'compressed through the CLI ✓ '.repeat(100);
  const bytes = Buffer.from(text, 'utf8');
  // What a client without context sends: deflated, sync-flushed, the trailing 00 00 ff ff removed.
  const payload = deflateRawSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
  for (const command of ['echo', 'room']) {
    for (const off of [false, true]) {
      const what = `resound ${command}${off ? ' --no-compression' : ''}`;
      const { child, url } = await startEcho(t, off ? ['--no-compression'] : [], command);
      const peer = await RawPeer.connect(Number(new URL(url).port));
      peer.write(handshakeRequest({ extra: ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'] }));
      const response = await peer.response();
      assert.equal(response.status, 101, `${what}: ${response.statusLine}`);
      peer.write(clientFrame(0x1, payload, { rsv: 0x40 }));
      const frame = await peer.nextFrame();
      if (off) {
        assert.equal(response.headers['sec-websocket-extensions'], undefined, what);
        // Not agreed, so RSV1 is a protocol error.
        assert.equal(closeOf(frame).code, 1002, what);
      } else {
        assert.equal(response.headers['sec-websocket-extensions'], 'permessage-deflate; server_no_context_takeover', what);
        // The echo (room: the publish to the sender) comes back compressed.
        assert.equal(frame.rsv, 0x40, `${what}: RSV1 on the echo`);
        assert.ok(frame.payload.length < bytes.length / 4, `${what}: ${frame.payload.length} bytes for ${bytes.length}`);
        const inflated = inflateRawSync(Buffer.concat([frame.payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH });
        assert.equal(inflated.toString('utf8'), text, what);
      }
      peer.destroy();
      child.proc.kill('SIGTERM');
      assert.deepEqual(await withTimeout(child.exited, 8000, `${what} to exit`), { code: 0, signal: null }, child.stderr());
    }
  }
});

test('echoing 16 MiB costs the echo server less than 4x the message in peak RSS', { timeout: 40_000 }, async (t) => {
  const size = 16 * MiB;
  const { child, url } = await startEcho(t);
  const pid = child.proc.pid!;
  const client = await WSClient.connect(url);

  // Warm up the code paths (JIT, socket buffers, large-frame branches) with a 1 MiB echo.
  const warm = patternBytes(MiB, 11);
  assertSameBytes((await client.echo(warm)) as Buffer, warm, 'warm-up echo');
  await delay(200);

  const data = patternBytes(size, 12);
  const reset = resetPeakMemory(pid);
  const before = processMemory(pid);
  // With the peak reset, the baseline is the current RSS; otherwise the old peak.
  const baseline = reset ? before.rss : before.hwm;
  const echoed = (await client.echo(data, 30_000)) as Buffer;
  assertSameBytes(echoed, data, '16 MiB echo');
  const afterEcho = processMemory(pid);
  const growth = afterEcho.hwm - baseline;
  const ratio = growth / size;
  t.diagnostic(
    `echo server peak RSS growth for a 16 MiB binary echo: ${(growth / MiB).toFixed(1)} MiB = ${ratio.toFixed(2)}x ` +
      `(baseline ${(baseline / MiB).toFixed(1)} MiB ${reset ? 'RSS after peak reset' : 'VmHWM'}, peak ${(afterEcho.hwm / MiB).toFixed(1)} MiB)`,
  );
  assert.ok(ratio < 4, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB (${ratio.toFixed(2)}x the 16 MiB message); budget < 4x`);

  await client.close();
  child.proc.kill('SIGTERM');
  assert.equal((await withTimeout(child.exited, 8000, 'exit after SIGTERM')).code, 0);
});
