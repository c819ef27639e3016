/**
 * The soak's load (bench/soak.ts starts it, pinned to its own core): N loops,
 * each one connection at a time, in a cycle of
 *
 *   connect → handshake → K messages echoed one after another, each checked
 *   byte for byte → close frame with 1000 → the server's close frame (1000)
 *   → the server closes TCP → the socket is closed → again.
 *
 * The default client is raw node:net sockets with the upgrade request and the
 * masked frames written by hand (wire.ts), so what reaches the server and what
 * it answers are checked on the wire itself, independently of resound's own
 * client, and the load costs little CPU per cycle. `--client resound` runs the
 * same cycle with resound's connect() instead and then counts the load
 * process's own leaks too (soak-count.ts).
 *
 * Every message carries a stamp (loop, cycle, message number), so an echo of
 * another connection's or another cycle's message is caught. Messages
 * alternate text and binary.
 *
 * Runs until the runner sends 'stop'; then every loop finishes its cycle
 * (bounded by --drain), the totals go back over IPC, and it waits for 'exit'.
 */
import { connect as netConnect, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { connect, type WSConnection } from '../lib/index.js';
import { checkTimersAtClose, countResources, installTimerCounter, realTimers, track, type ResourceCounts } from './soak-count.js';
import type { LoadFinal, LoadMessage, LoadProgress, LoadRequest } from './soak-ipc.js';
import { CLIENT_CLOSE, OPCODE_BINARY, OPCODE_TEXT, checkUpgradeResponse, clientFrame, payload, serverFrame, upgradeRequest } from './wire.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    connections: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '3' },
    'message-size': { type: 'string', default: '64' },
    client: { type: 'string', default: 'raw' },
    stall: { type: 'string', default: '10' },
    drain: { type: 'string', default: '10' },
  },
});
if (process.send === undefined || values.port === undefined || (values.client !== 'raw' && values.client !== 'resound')) {
  process.stderr.write('soak-load: run me from bench/soak.ts (--port P [--connections N] [--messages K] [--message-size B] [--client raw|resound])\n');
  process.exit(2);
}
const send = (message: LoadMessage): void => {
  process.send!(message);
};

const port = Number(values.port);
const connections = Number(values.connections);
const messagesPerCycle = Number(values.messages);
const size = Number(values['message-size']);
const stallMs = Number(values.stall) * 1000;
const drainMs = Number(values.drain) * 1000;
const resoundClient = values.client === 'resound';
// The resound client's own timers are counted (its connect timeout, its close timer).
if (resoundClient) installTimerCounter();

const BASE = payload(size, false);
const REQUEST = upgradeRequest(port);

/** Message `j` of cycle `cycle` of loop `loop`: the base payload with "loop.cycle.j|" written over its start. */
function body(loop: number, cycle: number, j: number): Buffer {
  const bytes = Buffer.from(BASE);
  bytes.write(`${loop}.${cycle}.${j}|`, 0, 'latin1');
  return bytes;
}

// ---------------------------------------------------------------- counts

const progress: LoadProgress = { cycles: 0, messages: 0, errors: 0, resets: 0, active: 0 };
const errorKinds: Record<string, number> = {};
const firstErrors: string[] = [];
let stopping = false;
let stoppedAt = 0;
let unfinished = 0;

function countError(kind: string, detail: string): void {
  progress.errors++;
  errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  if (firstErrors.length < 10) firstErrors.push(`${kind}: ${detail}`);
}

const PHASES = ['idle', 'connecting', 'handshake', 'echo', 'closing', 'close received', 'failed'] as const;
type Phase = (typeof PHASES)[number];

/** What the runner and the watchdog see of a loop. */
interface Loop {
  readonly phase: Phase;
  readonly phaseSince: number;
  start(): void;
  /** Give up the current cycle (stalled, or cut at the drain bound) as an error. */
  abort(kind: string): void;
}

/** A loop between cycles: stopped, or the next cycle not started. */
function loopEnded(): void {
  progress.active--;
  if (stopping && progress.active === 0) finish();
}

// ---------------------------------------------------------------- raw client

const EMPTY = Buffer.alloc(0);
/** After an error, wait this long before the loop's next cycle (a failing server is not hammered). */
const RETRY_MS = 100;

class RawLoop implements Loop {
  phase: Phase = 'idle';
  phaseSince = 0;
  private socket: Socket | null = null;
  private cycle = 0;
  private message = 0;
  private head = '';
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private expected: Buffer = EMPTY;

  constructor(private readonly index: number) {}

  private enter(phase: Phase): void {
    this.phase = phase;
    this.phaseSince = performance.now();
  }

  start(): void {
    if (stopping) return;
    progress.active++;
    this.cycle++;
    this.message = 0;
    this.head = '';
    this.pending = [];
    this.pendingBytes = 0;
    this.enter('connecting');
    const socket = netConnect({ host: '127.0.0.1', port, noDelay: true });
    this.socket = socket;
    socket.on('connect', () => {
      this.enter('handshake');
      socket.write(REQUEST);
    });
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('end', () => {
      // Node ends our side too (allowHalfOpen is off); the server must close TCP only after its close frame.
      if (this.phase !== 'close received') this.fail('early end', `the server closed TCP in phase ${this.phase}`);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (this.phase === 'close received' && error.code === 'ECONNRESET') progress.resets++;
      else this.fail(`socket ${error.code ?? 'error'}`, `${error.message} in phase ${this.phase}`);
    });
    socket.on('close', () => {
      const ok = this.phase === 'close received';
      if (ok) progress.cycles++;
      else this.fail('early close', `the socket closed in phase ${this.phase}`);
      this.socket = null;
      this.enter('idle');
      loopEnded();
      if (ok) this.start();
      else realTimers.setTimeout(() => this.start(), RETRY_MS);
    });
  }

  abort(kind: string): void {
    this.fail(kind, `in phase ${this.phase} for ${((performance.now() - this.phaseSince) / 1000).toFixed(1)} s`);
  }

  private fail(kind: string, detail: string): void {
    if (this.phase === 'failed' || this.phase === 'idle') return;
    countError(kind, `loop ${this.index} cycle ${this.cycle}: ${detail}`);
    this.enter('failed');
    this.socket?.destroy();
  }

  private received(chunk: Buffer): void {
    switch (this.phase) {
      case 'handshake': {
        this.head += chunk.toString('latin1');
        const end = this.head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.head.length > 16 * 1024) this.fail('handshake', 'response head over 16 KiB');
          return;
        }
        const problem = checkUpgradeResponse(this.head.slice(0, end));
        if (problem !== null) return this.fail('handshake', problem);
        if (this.head.length > end + 4) return this.fail('handshake', 'bytes after the 101 before any message was sent');
        this.head = '';
        if (messagesPerCycle > 0) this.sendMessage();
        else this.sendClose();
        return;
      }
      case 'echo': {
        if (!this.take(chunk, this.expected.length)) return;
        const echo = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
        this.pending = [];
        this.pendingBytes = 0;
        if (!echo.equals(this.expected)) return this.fail('echo differs', `message ${this.message}: got ${echo.subarray(0, 24).toString('hex')}…, expected ${this.expected.subarray(0, 24).toString('hex')}…`);
        progress.messages++;
        if (++this.message < messagesPerCycle) this.sendMessage();
        else this.sendClose();
        return;
      }
      case 'closing': {
        this.pending.push(chunk);
        this.pendingBytes += chunk.length;
        const frame = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
        if (frame.length < 2) return;
        const length = frame[1]! & 0x7f;
        if (frame[0] !== 0x88 || (frame[1]! & 0x80) !== 0 || length > 125 || length === 1) {
          return this.fail('bad close frame', `expected an unmasked close frame, got ${frame.subarray(0, 8).toString('hex')}`);
        }
        if (frame.length < 2 + length) return;
        if (frame.length > 2 + length) return this.fail('bad close frame', 'bytes after the close frame');
        const code = length >= 2 ? frame.readUInt16BE(2) : 1005;
        if (code !== 1000) return this.fail('close code', `the server closed with ${code}, expected 1000`);
        this.pending = [];
        this.pendingBytes = 0;
        this.enter('close received');
        return;
      }
      default:
        this.fail('unexpected data', `${chunk.length} bytes in phase ${this.phase}`);
    }
  }

  /** Gather `chunk`; true once exactly `want` bytes are in, a failure beyond. */
  private take(chunk: Buffer, want: number): boolean {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes > want) {
      this.fail('echo differs', `message ${this.message}: ${this.pendingBytes} bytes for a ${want}-byte echo`);
      return false;
    }
    return this.pendingBytes === want;
  }

  private sendMessage(): void {
    const opcode = this.message % 2 === 0 ? OPCODE_TEXT : OPCODE_BINARY;
    const bytes = body(this.index, this.cycle, this.message);
    this.expected = serverFrame(opcode, bytes);
    if (this.phase !== 'echo') this.enter('echo');
    this.socket!.write(clientFrame(opcode, bytes));
  }

  private sendClose(): void {
    this.enter('closing');
    this.socket!.write(CLIENT_CLOSE);
  }
}

// ---------------------------------------------------------------- resound client

const TARGET_URL = `ws://127.0.0.1:${port}/`;

class ResoundLoop implements Loop {
  phase: Phase = 'idle';
  phaseSince = 0;
  private conn: WSConnection | null = null;
  private cycle = 0;

  constructor(private readonly index: number) {}

  private enter(phase: Phase): void {
    if (this.phase === 'failed') return;
    this.phase = phase;
    this.phaseSince = performance.now();
  }

  start(): void {
    void this.run();
  }

  abort(kind: string): void {
    if (this.phase === 'failed' || this.phase === 'idle') return;
    countError(kind, `loop ${this.index} cycle ${this.cycle}: in phase ${this.phase} for ${((performance.now() - this.phaseSince) / 1000).toFixed(1)} s`);
    this.phase = 'failed';
    // A pending receive() rejects once closed; the close itself is bounded by closeTimeout.
    this.conn?.close(1001);
  }

  private fail(kind: string, detail: string): void {
    if (this.phase === 'failed') return;
    countError(kind, `loop ${this.index} cycle ${this.cycle}: ${detail}`);
    this.phase = 'failed';
  }

  /** The watchdog may have failed the cycle meanwhile. */
  private hasFailed(): boolean {
    return this.phase === 'failed';
  }

  private async run(): Promise<void> {
    while (!stopping) {
      progress.active++;
      this.cycle++;
      this.phase = 'idle';
      this.enter('connecting');
      let ok = false;
      try {
        const conn = await connect(TARGET_URL, { timeout: stallMs });
        this.conn = conn;
        track(conn, 'connection');
        const socket = (conn as unknown as { socket?: unknown }).socket;
        if (socket instanceof Socket) {
          track(socket, 'socket');
          socket.once('close', checkTimersAtClose);
        }
        this.enter('echo');
        for (let j = 0; j < messagesPerCycle; j++) {
          const bytes = body(this.index, this.cycle, j);
          const text = j % 2 === 0 ? bytes.toString('latin1') : null;
          void (text !== null ? conn.sendText(text) : conn.sendBinary(bytes));
          const echo = await conn.receive();
          const same = text !== null ? echo === text : Buffer.isBuffer(echo) && echo.equals(bytes);
          if (!same) throw Object.assign(new Error(`message ${j}: the echo differs`), { kind: 'echo differs' });
          progress.messages++;
        }
        this.enter('closing');
        conn.close(1000);
        const info = await conn.closed;
        if (info.code !== 1000) throw Object.assign(new Error(`closed with ${info.code}, expected 1000`), { kind: 'close code' });
        ok = !this.hasFailed();
      } catch (error) {
        const e = error as Error & { kind?: string };
        this.fail(e.kind ?? e.name, e.message);
        // Wait for the close, bounded by the connection's own close timer.
        if (this.conn !== null) {
          this.conn.close(1001);
          await this.conn.closed;
        }
      }
      this.conn = null;
      if (ok) progress.cycles++;
      this.phase = 'idle';
      loopEnded();
      if (!ok) await new Promise((resolve) => realTimers.setTimeout(resolve, RETRY_MS));
    }
  }
}

// ---------------------------------------------------------------- running

const loops: Loop[] = [];
for (let i = 0; i < connections; i++) loops.push(resoundClient ? new ResoundLoop(i) : new RawLoop(i));

// Start the loops 50 at a time, 10 ms apart: a burst of 1,000 SYNs would overflow the listen backlog (511).
let started = 0;
const starter = realTimers.setInterval(() => {
  for (let n = 0; n < 50 && started < loops.length; n++) loops[started++]!.start();
  if (started >= loops.length) realTimers.clearInterval(starter);
}, 10);

const watchdog = realTimers.setInterval(() => {
  const now = performance.now();
  for (const loop of loops) {
    if (loop.phase !== 'idle' && loop.phase !== 'failed' && now - loop.phaseSince > stallMs) loop.abort('stalled');
  }
  if (stopping && now - stoppedAt > drainMs) {
    for (const loop of loops) {
      if (loop.phase !== 'idle' && loop.phase !== 'failed') {
        unfinished++;
        loop.abort('unfinished at stop');
      }
    }
  }
}, 250);

const reporter = realTimers.setInterval(() => send({ type: 'progress', progress: { ...progress } }), 1000);

let finished = false;
function finish(): void {
  if (finished) return;
  finished = true;
  realTimers.clearInterval(watchdog);
  realTimers.clearInterval(reporter);
  const drained = performance.now() - stoppedAt;
  const self: Promise<ResourceCounts | null> = resoundClient ? countResources({ gc: true, expectedTcp: 0 }) : Promise.resolve(null);
  void self.then((counts) => {
    const final: LoadFinal = { ...progress, errorKinds, firstErrors, drainMs: drained, unfinished, self: counts };
    send({ type: 'final', final });
  });
}

process.on('message', (raw: unknown) => {
  const request = raw as LoadRequest;
  if (request.type === 'stop') {
    if (stopping) return;
    stopping = true;
    stoppedAt = performance.now();
    realTimers.clearInterval(starter);
    if (progress.active === 0) finish();
  } else if (request.type === 'exit') {
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
