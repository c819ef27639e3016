/**
 * What the soak counts in a process to find leaks (bench/soak.ts): open file
 * descriptors and the TCP state of each socket among them, Node's active
 * resources, the timers armed through the global timer functions, listeners
 * on shared emitters, and objects still alive after forced collections.
 *
 * Why not process.getActiveResourcesInfo() alone: it lists only handles and
 * timers that keep the event loop alive, and resound unrefs its timers (the
 * handshake deadline, the close timer), so a leaked one would never appear
 * there. Hence the timer wrappers below (installTimerCounter, in the process
 * under test only, before any connection exists), and the count of open
 * descriptors from /proc/self/fd, which sees every socket whatever its ref.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { EventEmitter } from 'node:events';
import { getHeapSpaceStatistics } from 'node:v8';

export interface ResourceCounts {
  /** process.getActiveResourcesInfo() by type: handles, requests and timers that keep the loop alive. */
  activeResources: Record<string, number>;
  /** Open file descriptors by kind: tcp, unix, pipe, anon_inode, file, … */
  fds: Record<string, number>;
  /** The TCP sockets among them by state (LISTEN, ESTABLISHED, CLOSE_WAIT, …); read only when there are more than expected. */
  tcpStates: Record<string, number> | null;
  /** Timers armed (neither fired nor cleared) through the global functions, by "kind callback delay". */
  timersArmed: Record<string, number>;
  /** Timers that fired, by the same label: a handshake deadline or close timer that fired means a timeout. */
  timersFired: Record<string, number>;
  /** Sockets that closed while a timer armed with them as its argument was still armed. */
  timersArmedAtSocketClose: number;
  /** process.listenerCount(name) for every event with a listener. */
  processListeners: Record<string, number>;
  /** Listener counts of other shared emitters (e.g. the net.Server), by "emitter.event". */
  emitterListeners: Record<string, number>;
  /** Objects handed to track(): how many, and how many are still alive (meaningful after collectGarbage()). */
  survivors: Record<string, { tracked: number; alive: number }>;
  heapUsedBytes: number;
  /** Bytes used in each V8 heap space (old_space, code_space, …): where a growth of heapUsed is. */
  heapSpaces: Record<string, number>;
  /** Full collections forced before counting (0 without gc). */
  gcRounds: number;
}

// ---------------------------------------------------------------- timers

/** The real timer functions, kept before installTimerCounter() replaces the globals: the harness's own timers use these and are not counted. */
export const realTimers = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  setInterval: globalThis.setInterval,
  clearInterval: globalThis.clearInterval,
  setImmediate: globalThis.setImmediate,
  clearImmediate: globalThis.clearImmediate,
};

interface Armed {
  label: string;
  /** The first object argument (resound passes the socket to destroy), or null. */
  target: object | null;
  repeat: boolean;
}

const armed = new Map<object, Armed>();
const fired = new Map<string, number>();
/** Armed timers per target object. */
const armedPerTarget = new WeakMap<object, number>();
let armedAtSocketClose = 0;
let installed = false;

type Callback = (...args: unknown[]) => void;
type Arm = (callback: Callback, ms?: number, ...args: unknown[]) => object;
type Disarm = (timer: unknown) => void;

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

function arm(timer: object, entry: Armed): void {
  armed.set(timer, entry);
  if (entry.target !== null) armedPerTarget.set(entry.target, (armedPerTarget.get(entry.target) ?? 0) + 1);
}

function disarm(timer: unknown): void {
  if (typeof timer !== 'object' || timer === null) return;
  const entry = armed.get(timer);
  if (entry === undefined) return;
  armed.delete(timer);
  if (entry.target !== null) {
    const left = (armedPerTarget.get(entry.target) ?? 1) - 1;
    if (left > 0) armedPerTarget.set(entry.target, left);
    else armedPerTarget.delete(entry.target);
  }
}

function wrapArm(kind: string, real: Arm, repeat: boolean, hasDelay: boolean): Arm {
  const wrapped = function (this: unknown, callback: Callback, ...rest: unknown[]): object {
    // Let the real function reject what it rejects.
    if (typeof callback !== 'function') return (real as (...a: unknown[]) => object)(callback, ...rest);
    const ms = hasDelay ? rest[0] : undefined;
    const args = hasDelay ? rest.slice(1) : rest;
    const target = args.find((arg): arg is object => typeof arg === 'object' && arg !== null) ?? null;
    const label = `${kind} ${callback.name || '(anonymous)'}${hasDelay ? ` ${String(ms ?? 1)} ms` : ''}`;
    const entry: Armed = { label, target, repeat };
    const timer: object = (real as (...a: unknown[]) => object)(function (this: unknown, ...callArgs: unknown[]): void {
      bump(fired, label);
      if (!repeat) disarm(timer);
      callback.apply(this, callArgs);
    }, ...rest);
    arm(timer, entry);
    return timer;
  };
  // util.promisify.custom and friends.
  Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(real));
  return wrapped as unknown as Arm;
}

function wrapDisarm(real: Disarm): Disarm {
  const wrapped = (timer: unknown): void => {
    disarm(timer);
    real(timer);
  };
  Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(real));
  return wrapped;
}

/**
 * Replace the global setTimeout, setInterval, setImmediate and their clear
 * functions with counting wrappers (same behaviour, same return values).
 * Call it before the code under test arms anything.
 */
export function installTimerCounter(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as unknown as Record<string, unknown>;
  g.setTimeout = wrapArm('Timeout', realTimers.setTimeout as unknown as Arm, false, true);
  g.setInterval = wrapArm('Interval', realTimers.setInterval as unknown as Arm, true, true);
  g.setImmediate = wrapArm('Immediate', realTimers.setImmediate as unknown as Arm, false, false);
  g.clearTimeout = wrapDisarm(realTimers.clearTimeout as unknown as Disarm);
  g.clearInterval = wrapDisarm(realTimers.clearInterval as unknown as Disarm);
  g.clearImmediate = wrapDisarm(realTimers.clearImmediate as unknown as Disarm);
}

/**
 * A 'close' listener for sockets under test, added after the library's own
 * (listeners run in order): a timer still armed with this socket as its
 * argument once the library handled the close is a timer it forgot.
 */
export function checkTimersAtClose(this: object): void {
  if ((armedPerTarget.get(this) ?? 0) > 0) armedAtSocketClose++;
}

// ---------------------------------------------------------------- objects

const trackedCounts = new Map<string, number>();
const collectedCounts = new Map<string, number>();
const registry = new FinalizationRegistry<string>((kind) => bump(collectedCounts, kind));

/** Count `object` as one of `kind`; it is counted alive until collected. Holds nothing of it. */
export function track(object: object, kind: string): void {
  bump(trackedCounts, kind);
  registry.register(object, kind);
}

function survivors(): Record<string, { tracked: number; alive: number }> {
  const out: Record<string, { tracked: number; alive: number }> = {};
  for (const [kind, tracked] of trackedCounts) out[kind] = { tracked, alive: tracked - (collectedCounts.get(kind) ?? 0) };
  return out;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => realTimers.setImmediate(resolve));
const pause = (ms: number): Promise<void> => new Promise((resolve) => realTimers.setTimeout(resolve, ms));

/**
 * Force full collections (needs node --expose-gc) until the tracked objects
 * alive and the heap stop shrinking, at most `maxRounds`; finalization
 * callbacks get a few turns of the event loop after each. Returns the rounds
 * done, 0 without gc.
 */
export async function collectGarbage(maxRounds = 12): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return 0;
  let lastAlive = Number.POSITIVE_INFINITY;
  let lastHeap = Number.POSITIVE_INFINITY;
  for (let round = 1; round <= maxRounds; round++) {
    gc();
    for (let i = 0; i < 3; i++) await nextTurn();
    await pause(20);
    const alive = Object.values(survivors()).reduce((sum, s) => sum + s.alive, 0);
    const heap = process.memoryUsage().heapUsed;
    if (round >= 3 && alive >= lastAlive && heap >= lastHeap * 0.999) return round;
    lastAlive = alive;
    lastHeap = heap;
  }
  return maxRounds;
}

// ---------------------------------------------------------------- descriptors and listeners

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

/** Inodes listed in a /proc/net table (the inode is the 10th column in tcp, the 7th in unix). */
function inodesOf(table: string, column: number, wanted: Set<string> | null): Map<string, string> {
  const out = new Map<string, string>();
  let text: string;
  try {
    text = readFileSync(table, 'latin1');
  } catch {
    return out;
  }
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const fields = lines[i]!.trim().split(/\s+/);
    const inode = fields[column];
    if (inode === undefined || inode === '0' || (wanted !== null && !wanted.has(inode))) continue;
    out.set(inode, fields[3] ?? '');
  }
  return out;
}

/**
 * Open descriptors of this process by kind. Sockets are told apart through
 * /proc/net/unix; the rest are TCP (nothing here opens UDP). When there are
 * more TCP sockets than `expectedTcp`, their states are read from
 * /proc/net/tcp and tcp6 (large while many connections sit in TIME_WAIT, so
 * only then).
 */
function descriptors(expectedTcp: number): { fds: Record<string, number>; tcpStates: Record<string, number> | null } {
  const fds = new Map<string, number>();
  const socketInodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (the directory's own descriptor)
    }
    const socket = /^socket:\[(\d+)\]$/.exec(link);
    if (socket !== null) socketInodes.add(socket[1]!);
    else bump(fds, /^([a-z_]+):/.exec(link)?.[1] ?? 'file');
  }
  const unix = inodesOf('/proc/net/unix', 6, socketInodes);
  bump(fds, 'unix', unix.size);
  const tcp = socketInodes.size - unix.size;
  bump(fds, 'tcp', tcp);
  let tcpStates: Record<string, number> | null = null;
  if (tcp > expectedTcp) {
    const wanted = new Set([...socketInodes].filter((inode) => !unix.has(inode)));
    const states = new Map<string, number>();
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const state of inodesOf(table, 9, wanted).values()) bump(states, TCP_STATES[state] ?? state);
    }
    tcpStates = Object.fromEntries(states);
  }
  return { fds: Object.fromEntries([...fds].filter(([, n]) => n > 0)), tcpStates };
}

function listenerCounts(emitter: EventEmitter | NodeJS.Process, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of emitter.eventNames()) out[`${prefix}${String(name)}`] = emitter.listenerCount(name);
  return out;
}

function tally(items: readonly string[]): Record<string, number> {
  const out = new Map<string, number>();
  for (const item of items) bump(out, item);
  return Object.fromEntries(out);
}

/**
 * Count everything (see ResourceCounts). `emitters` are shared emitters whose
 * listeners should not grow, by name; `expectedTcp` is how many TCP sockets
 * the process holds by design (a server: its listener).
 */
export async function countResources(options: { gc: boolean; expectedTcp: number; emitters?: Record<string, EventEmitter> }): Promise<ResourceCounts> {
  const gcRounds = options.gc ? await collectGarbage() : 0;
  const heapUsedBytes = process.memoryUsage().heapUsed;
  const timersArmed = new Map<string, number>();
  for (const entry of armed.values()) bump(timersArmed, entry.label);
  let emitterListeners: Record<string, number> = {};
  for (const [name, emitter] of Object.entries(options.emitters ?? {})) {
    emitterListeners = { ...emitterListeners, ...listenerCounts(emitter, `${name}.`) };
  }
  return {
    activeResources: tally(process.getActiveResourcesInfo()),
    ...descriptors(options.expectedTcp),
    timersArmed: Object.fromEntries(timersArmed),
    timersFired: Object.fromEntries(fired),
    timersArmedAtSocketClose: armedAtSocketClose,
    processListeners: listenerCounts(process),
    emitterListeners,
    survivors: survivors(),
    heapUsedBytes,
    heapSpaces: Object.fromEntries(getHeapSpaceStatistics().map((space) => [space.space_name, space.space_used_size])),
    gcRounds,
  };
}
