/**
 * `resound client URL [--binary] [--header] [--origin] [--ca] [--insecure] [--no-compression]`:
 * lines from standard input go out as
 * messages; every message received is printed; end of input closes the
 * connection and the process exits 0 after a normal close. The extensions
 * agreed (permessage-deflate, offered by default) are printed on stderr.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import { type DeflateParams, type Message, type WSConnection } from '../../lib/index.js';
import { selfSignedCertificate, until } from '../support.js';
import { CLI_PATH, startResound, withTimeout } from './helpers.js';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI with `input` on stdin; the child is killed if it outlives `ms`. */
async function runCli(args: string[], input: string, ms = 10_000): Promise<Run> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<Run>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  child.stdin.on('error', () => {});
  child.stdin.end(input);
  try {
    return await withTimeout(exited, ms, `resound ${args.join(' ')} to exit`);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`${(error as Error).message}; stdout: ${JSON.stringify(stdout)}; stderr: ${JSON.stringify(stderr)}`);
  }
}

async function echoServer() {
  const received: Message[] = [];
  const closes: Array<[number, string]> = [];
  const peer = await startResound({
    onMessage(conn, message) {
      received.push(message);
      void conn.send(message);
    },
    onClose(_conn, code, reason) {
      closes.push([code, reason]);
    },
  });
  return { peer, received, closes };
}

test('resound client: two lines are sent as text, both echoes printed, exit 0 at end of input', { timeout: 15_000 }, async () => {
  const { peer, received, closes } = await echoServer();
  try {
    const run = await runCli(['client', `${peer.url}/`], 'hello there\nzweite Zeile ✓ 中文\n');
    assert.equal(run.code, 0, `exit code ${run.code}; stderr: ${run.stderr}`);
    assert.equal(run.stdout, 'hello there\nzweite Zeile ✓ 中文\n');
    assert.deepEqual(received, ['hello there', 'zweite Zeile ✓ 中文'], 'the server got text messages');
    assert.match(run.stderr, /connected to ws:\/\/127\.0\.0\.1:\d+\//);
    assert.match(run.stderr, /closed: 1000/);
    assert.deepEqual(closes, [[1000, '']], 'end of input closes with 1000');
  } finally {
    await peer.close();
  }
});

test('resound client --binary: lines go out as binary; output shows <binary N bytes> hex', { timeout: 15_000 }, async () => {
  const { peer, received } = await echoServer();
  try {
    const run = await runCli(['client', `${peer.url}/`, '--binary'], 'abc\nhé\n');
    assert.equal(run.code, 0, `exit code ${run.code}; stderr: ${run.stderr}`);
    assert.equal(run.stdout, '<binary 3 bytes> 616263\n<binary 3 bytes> 68c3a9\n');
    assert.deepEqual(received, [Buffer.from('abc'), Buffer.from('hé', 'utf8')], 'the server got binary messages');
  } finally {
    await peer.close();
  }
});

test('resound client: a server that closes with an error code makes the process exit 1', { timeout: 15_000 }, async () => {
  const peer = await startResound({
    onOpen(conn) {
      void conn.sendText('going away badly');
      conn.close(4500, 'nope');
    },
  });
  try {
    // Input stays open until the server has closed: the exit must come from the server's close.
    const child = spawn(process.execPath, [CLI_PATH, 'client', peer.url], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      const code = await withTimeout(exited, 10_000, 'the client to exit after the server closed');
      assert.equal(code, 1, `stderr: ${stderr}`);
      assert.equal(stdout, 'going away badly\n');
      assert.match(stderr, /closed: 4500 nope/);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  } finally {
    await peer.close();
  }
});

test('resound client: an unreachable server makes the process exit 1 with a message', { timeout: 15_000 }, async () => {
  const peer = await startResound({});
  const url = peer.url;
  await peer.close();
  const run = await runCli(['client', url], '');
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^resound: .*ECONNREFUSED/m);
  assert.equal(run.stdout, '');
});

test('resound client --header (repeatable) and --origin reach the server; the subprotocol agreed is printed on stderr', { timeout: 15_000 }, async () => {
  const seen: Array<Record<string, string | undefined>> = [];
  const peer = await startResound(
    {
      onOpen(conn) {
        const { headers } = conn.request;
        seen.push({ token: headers['x-token'], authorization: headers['authorization'], origin: headers['origin'] });
      },
      onMessage: (conn, message) => void conn.send(message),
    },
    { subprotocols: ['chat.v2', 'chat.v1'] },
  );
  try {
    const run = await runCli(
      ['client', `${peer.url}/`, '--header', 'X-Token: abc 123', '--header', 'Authorization:Bearer t0k', '--origin', 'https://app.example.com', '--subprotocol', 'chat.v1'],
      'hi\n',
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'hi\n', 'standard output has the messages only');
    assert.deepEqual(seen, [{ token: 'abc 123', authorization: 'Bearer t0k', origin: 'https://app.example.com' }]);
    assert.match(run.stderr, /^connected to ws:\/\/127\.0\.0\.1:\d+\/ \(subprotocol: chat\.v1\)$/m);
    assert.match(run.stderr, /^closed: 1000$/m);
    const none = await runCli(['client', `${peer.url}/`], '');
    assert.match(none.stderr, /\(subprotocol: none\)/);
  } finally {
    await peer.close();
  }
});

test('resound client: a malformed --header fails before connecting', { timeout: 10_000 }, async () => {
  const run = await runCli(['client', 'ws://127.0.0.1:1/', '--header', 'no colon here'], '');
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^resound: bad --header "no colon here": expected "Name: value"$/m);
});

test('resound client over wss:// to a self-signed server: --ca FILE and --insecure connect; neither is refused', { timeout: 20_000 }, async () => {
  const { cert, key, certPath } = selfSignedCertificate();
  const peer = await startResound((conn, message) => void conn.send(message), { tls: { cert, key } });
  try {
    assert.match(peer.url, /^wss:/);
    for (const flags of [['--ca', certPath], ['--insecure']]) {
      const run = await runCli(['client', `${peer.url}/`, ...flags], 'secret\n');
      assert.equal(run.code, 0, `${flags.join(' ')}: ${run.stderr}`);
      assert.equal(run.stdout, 'secret\n', flags.join(' '));
    }
  } finally {
    await peer.close();
  }
  // The refusal is the client's alone, so any TLS server with that certificate shows it. Not
  // resound's: its wss:// listener is half-open, and a socket the client drops during the TLS
  // handshake lingers there until Node's 120 s TLS handshake timeout, holding server.close() up.
  const bare = createTlsServer({ cert, key }, (socket) => socket.destroy());
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  try {
    const refused = await runCli(['client', `wss://127.0.0.1:${(bare.address() as AddressInfo).port}/`], 'never sent\n');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^resound: .*self[- ]signed certificate/m);
    assert.equal(refused.stdout, '');
  } finally {
    await new Promise<void>((resolve) => bare.close(() => resolve()));
  }
});

/** What Connection has and WSConnection does not show: the socket and the protocol. */
interface Wire {
  socket: Socket;
  protocol: { compression: DeflateParams | null };
}
const wire = (conn: WSConnection): Wire => conn as unknown as Wire;

test('resound client offers permessage-deflate and prints what was agreed; --no-compression offers nothing', { timeout: 15_000 }, async () => {
  const seen: Array<{ offer: string | undefined; compression: DeflateParams | null; bytesRead: number }> = [];
  const peer = await startResound({
    onOpen(conn) {
      seen.push({ offer: conn.request.headers['sec-websocket-extensions'], compression: wire(conn).protocol.compression, bytesRead: 0 });
    },
    onMessage: (conn, message) => void conn.send(message),
    onClose(conn) {
      seen.at(-1)!.bytesRead = wire(conn).socket.bytesRead;
    },
  });
  const long = 'a long line that compresses well '.repeat(300);
  try {
    const on = await runCli(['client', `${peer.url}/`], `${long}\nshort\n`);
    assert.equal(on.code, 0, on.stderr);
    assert.equal(on.stdout, `${long}\nshort\n`, 'both echoes, the compressed one whole');
    assert.match(on.stderr, /^connected to ws:\/\/127\.0\.0\.1:\d+\/ \(subprotocol: none\)\nextensions: permessage-deflate; server_no_context_takeover$/m);
    const off = await runCli(['client', `${peer.url}/`, '--no-compression'], `${long}\n`);
    assert.equal(off.code, 0, off.stderr);
    assert.equal(off.stdout, `${long}\n`);
    assert.match(off.stderr, /^extensions: none$/m);
    await until(() => seen.length === 2 && seen[1]!.bytesRead > 0, 'both connections to close');
    assert.equal(seen[0]!.offer, 'permessage-deflate; client_max_window_bits');
    assert.deepEqual(seen[0]!.compression, { serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 });
    assert.ok(seen[0]!.bytesRead < long.length / 4, `${seen[0]!.bytesRead} bytes read from the client for a ${long.length}-byte line: not compressed`);
    assert.equal(seen[1]!.offer, undefined, '--no-compression: no offer');
    assert.equal(seen[1]!.compression, null);
    assert.ok(seen[1]!.bytesRead > long.length);
  } finally {
    await peer.close();
  }
  // A server that declines: offered, not agreed, and said so.
  const plain = await startResound((conn, message) => void conn.send(message), { perMessageDeflate: false });
  try {
    const run = await runCli(['client', `${plain.url}/`], 'hi\n');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^extensions: none$/m);
  } finally {
    await plain.close();
  }
});
