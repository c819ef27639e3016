/**
 * Keepalive pings and idle timeouts for every connection on one timer.
 *
 * Connections with the same (pingInterval, pingTimeout, idleTimeout) share a
 * wheel: an array of slots, one per tick, each a set of the connections to
 * look at on that tick. A read only stores the current tick on the
 * connection (`seenAt`); nothing is moved between slots until the slot comes
 * due, when each connection there is checked and either pinged, closed, or
 * put in the slot of its next deadline. So a busy connection costs one store
 * per read, an idle one costs a set entry and a visit per interval, and the
 * process has one interval timer per distinct configuration, not one timer
 * per connection.
 *
 * Time is counted in timer firings, not wall-clock time: after the event loop
 * stalls, the wheel moves on one tick per firing, so a peer whose pong sits
 * unread in the kernel is not declared dead because we were busy.
 */

/** What the wheel needs of a connection (lib/connection.ts implements it). */
export interface KeptAlive {
  /** Tick of the last bytes received: any frame counts as life. */
  seenAt: number;
  /** Tick of the last message received or sent (idleTimeout). */
  activeAt: number;
  /** Tick of the slot this connection waits in; -1 when in no wheel. */
  keepDue: number;
  /** Tick our unanswered keepalive ping went out; -1 when none is out. */
  pingedAt: number;
  /** Send a keepalive ping; false when the connection no longer takes one (closing). */
  keepalivePing(): boolean;
  /** Nothing arrived within pingTimeout of our ping: the peer is gone. */
  keepaliveLost(): void;
  /** No message either way for idleTimeout. */
  idleTimedOut(): void;
}

export interface KeepaliveTimes {
  /** Milliseconds without anything received before we ping; 0: never ping. */
  pingInterval: number;
  /** Milliseconds a ping may go unanswered (nothing received) before the connection is dropped; 0: never. */
  pingTimeout: number;
  /** Milliseconds without a message either way before the connection is closed with 1001; 0: never. */
  idleTimeout: number;
}

/** The finest and coarsest tick: fine enough for short test intervals, coarse enough to cost nothing. */
const MIN_TICK_MS = 5;
const MAX_TICK_MS = 1000;
/** Ticks per shortest delay: a deadline is met to within an eighth of it (or a second). */
const TICKS_PER_DELAY = 8;

export class KeepaliveWheel {
  /** The current tick; connections store it on every read. */
  tick = 0;
  readonly tickMs: number;
  private readonly intervalTicks: number;
  private readonly timeoutTicks: number;
  private readonly idleTicks: number;
  /** Slot `t % slots.length` holds the connections due at tick t; created on first use. */
  private readonly slots: Array<Set<KeptAlive> | undefined>;
  private size = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly times: Readonly<KeepaliveTimes>) {
    const delays = [times.pingInterval, times.pingTimeout, times.idleTimeout].filter((ms) => ms > 0);
    this.tickMs = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(Math.min(...delays) / TICKS_PER_DELAY)));
    const ticks = (ms: number): number => (ms > 0 ? Math.max(1, Math.ceil(ms / this.tickMs)) : 0);
    this.intervalTicks = ticks(times.pingInterval);
    this.timeoutTicks = ticks(times.pingTimeout);
    this.idleTicks = ticks(times.idleTimeout);
    // Every deadline is at most this many ticks ahead, so no slot ever holds two different ticks.
    this.slots = new Array<Set<KeptAlive> | undefined>(Math.max(this.intervalTicks, this.timeoutTicks, this.idleTicks) + 2);
  }

  /** Connections in the wheel. */
  get count(): number {
    return this.size;
  }

  /** Start watching an open connection: it counts as just seen and just active. */
  add(conn: KeptAlive): void {
    if (conn.keepDue >= 0) return;
    conn.seenAt = this.tick;
    conn.activeAt = this.tick;
    conn.pingedAt = -1;
    this.size++;
    this.place(conn, this.nextDue(conn, this.tick));
    if (this.timer === null) {
      this.timer = setInterval(() => this.advance(), this.tickMs);
      // The wheel never keeps a process alive by itself.
      this.timer.unref();
    }
  }

  /** Stop watching (the connection closed, or was dropped by the wheel). */
  remove(conn: KeptAlive): void {
    if (conn.keepDue < 0) return;
    this.slots[conn.keepDue % this.slots.length]?.delete(conn);
    conn.keepDue = -1;
    conn.pingedAt = -1;
    this.shrink();
  }

  private shrink(): void {
    if (--this.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** One timer firing: the next tick's slot comes due. Exposed for tests that drive the wheel by hand. */
  advance(): void {
    const tick = ++this.tick;
    const index = tick % this.slots.length;
    const due = this.slots[index];
    if (due === undefined || due.size === 0) return;
    // A fresh set for what is placed while this one is being walked (never the same tick, but the same slot).
    this.slots[index] = undefined;
    for (const conn of due) {
      // Removed while this slot was being walked (a callback closed it): skip.
      if (conn.keepDue !== tick) continue;
      conn.keepDue = -1;
      this.visit(conn, tick);
    }
  }

  /** Decide about one connection whose slot came due: answered, dead, idle, due a ping, or not yet. */
  private visit(conn: KeptAlive, tick: number): void {
    if (conn.pingedAt >= 0) {
      if (conn.seenAt >= conn.pingedAt) conn.pingedAt = -1;
      else if (tick >= conn.pingedAt + this.timeoutTicks) return this.drop(conn, LOST);
    }
    if (this.idleTicks > 0 && tick >= conn.activeAt + this.idleTicks) return this.drop(conn, IDLE);
    if (this.intervalTicks > 0 && conn.pingedAt < 0 && tick >= conn.seenAt + this.intervalTicks) {
      if (!conn.keepalivePing()) return this.drop(conn, CLOSING);
      // Without a pingTimeout the ping only keeps the path warm (NAT, proxies): nothing waits for its answer.
      if (this.timeoutTicks > 0) conn.pingedAt = tick;
      else conn.seenAt = tick;
    }
    this.place(conn, this.nextDue(conn, tick));
  }

  private drop(conn: KeptAlive, why: typeof LOST | typeof IDLE | typeof CLOSING): void {
    // In no slot now (advance() took it out of its own): only the count changes.
    conn.pingedAt = -1;
    this.shrink();
    if (why === LOST) conn.keepaliveLost();
    else if (why === IDLE) conn.idleTimedOut();
  }

  /** The earliest tick after `tick` at which something may be due for `conn`. */
  private nextDue(conn: KeptAlive, tick: number): number {
    let due = Infinity;
    if (this.idleTicks > 0) due = conn.activeAt + this.idleTicks;
    if (this.intervalTicks > 0) due = Math.min(due, conn.pingedAt >= 0 ? conn.pingedAt + this.timeoutTicks : conn.seenAt + this.intervalTicks);
    return Math.max(due, tick + 1);
  }

  private place(conn: KeptAlive, due: number): void {
    conn.keepDue = due;
    const index = due % this.slots.length;
    (this.slots[index] ??= new Set()).add(conn);
  }
}

const LOST = 1;
const IDLE = 2;
const CLOSING = 3;

/** Wheels by configuration: every connection with the same times shares one. */
const wheels = new Map<string, KeepaliveWheel>();

/** The shared wheel for these times, or undefined when neither pings nor idle timeouts are on. */
export function keepaliveWheel(times: KeepaliveTimes): KeepaliveWheel | undefined {
  checkTimes(times);
  if (times.pingInterval === 0 && times.idleTimeout === 0) return undefined;
  const key = `${times.pingInterval}/${times.pingTimeout}/${times.idleTimeout}`;
  let wheel = wheels.get(key);
  if (wheel === undefined) wheels.set(key, (wheel = new KeepaliveWheel({ ...times })));
  return wheel;
}

function checkTimes(times: KeepaliveTimes): void {
  for (const name of ['pingInterval', 'pingTimeout', 'idleTimeout'] as const) {
    const ms = times[name];
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new RangeError(`${name} must be a number of milliseconds ≥ 0 (0 turns it off), got ${String(ms)}`);
  }
}
