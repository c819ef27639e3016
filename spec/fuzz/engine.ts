/**
 * A small mutation-fuzzing engine. Every case is generated from one 32-bit
 * case seed (a corpus sample of valid traffic, then stacked mutations), and
 * checked with a second PRNG derived from the same seed (split points, what
 * the application does), so a failure is replayed from its seed alone, or
 * from its bytes and seed (`checkInput`).
 *
 * Not a *.spec.ts file: the test runner does not run it.
 */
import { Rng } from '../protocol/helpers.js';

export { Rng };

/** A corpus entry: valid traffic, and where its frames start (-1: it has none), for the length-field mutator. */
export interface Sample {
  bytes: Buffer;
  frameAt: number;
  /** The events the receiving side reports for the sample as is (describeEvent strings), when known. */
  expect?: readonly string[];
}

/** What one case feeds a target. */
export interface FuzzInput {
  bytes: Buffer;
  /** Unmutated valid traffic: the target may check stronger properties (no failure at all). */
  pristine: boolean;
  /** For pristine input: the sample's expected events. */
  expect?: readonly string[];
}

/** How often each outcome was reached: a run that never reaches an outcome proves nothing about it. */
export class Tally {
  readonly counts = new Map<string, number>();
  add(outcome: string): void {
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1);
  }
  clear(): void {
    this.counts.clear();
  }
  toString(): string {
    return [...this.counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}: ${n}`).join(', ');
  }
}

export interface Target {
  readonly name: string;
  /** Outcomes reached by the checks so far (the spec asserts the important ones are). */
  readonly tally: Tally;
  /** One line on what the target feeds and checks, for `--list` and the docs. */
  readonly about: string;
  /** A sample of valid traffic drawn from `rng`. */
  sample(rng: Rng): Sample;
  /** Extra tokens the dictionary mutator inserts (on top of the shared ones). */
  readonly dictionary?: readonly Buffer[];
  /** Extra payload sizes the frame-resizing mutator tries (a target's limits, ±1). */
  readonly sizes?: readonly number[];
  /** Check every property on `input`; throw on a violation. `rng` draws split points and application choices. */
  check(input: FuzzInput, rng: Rng): void;
}

/** Bytes every byte-level mutator likes: boundaries of lengths, opcodes, UTF-8 and HTTP syntax. */
export const INTERESTING_BYTES = [
  0x00, 0x01, 0x09, 0x0a, 0x0d, 0x20, 0x2c, 0x3a, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x88, 0x89, 0x8a, 0x8f, 0x90, 0x9f,
  0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xfe, 0xff,
] as const;

/** Values the length-field mutator writes: the encodings' edges, and lengths no frame may have. */
const INTERESTING_LENGTHS = [0, 1, 2, 124, 125, 126, 127, 128, 0xfffe, 0xffff, 0x10000, 2 ** 31, 2 ** 32, 2 ** 53 - 1] as const;

const SHARED_DICTIONARY = ['\r\n', '\r\n\r\n', '\n', '\r', ': ', ',', ' ', '\t', '\u0000', '\u00ff'].map((s) => Buffer.from(s, 'latin1'));

// ------------------------------------------------------------------ seeds

/** A well-mixed 32-bit seed for case `index` of the run seeded `runSeed` (the murmur3 finaliser). */
export function caseSeed(runSeed: number, index: number): number {
  let z = (runSeed + Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** The PRNG a check gets: separate from generation, so bytes and seed replay a case exactly. */
export function checkRng(seed: number): Rng {
  return new Rng((seed ^ 0xa5a5a5a5) >>> 0);
}

// ------------------------------------------------------------------ mutators

type Mutator = (bytes: Buffer, rng: Rng, context: MutationContext) => Buffer;

interface MutationContext {
  frameAt: number;
  /** Another sample of the same target, for splicing. */
  other: () => Sample;
  dictionary: readonly Buffer[];
  sizes: readonly number[];
}

/** A position in `bytes`: anywhere, or biased towards the front and the first frames, where headers and lengths live. */
function position(bytes: Buffer, rng: Rng, frameAt = -1): number {
  if (bytes.length === 0) return 0;
  const r = rng.int(4);
  if (r === 0) return rng.int(Math.min(bytes.length, 32));
  if (r === 1 && frameAt >= 0 && frameAt < bytes.length) return frameAt + rng.int(Math.min(bytes.length - frameAt, 32));
  return rng.int(bytes.length);
}

function rangeLength(bytes: Buffer, rng: Rng): number {
  return rng.chance(0.8) ? rng.range(1, 8) : rng.range(1, Math.max(1, bytes.length >> 1));
}

const bitFlip: Mutator = (bytes, rng, context) => {
  if (bytes.length === 0) return bytes;
  const out = Buffer.from(bytes);
  const at = position(out, rng, context.frameAt);
  out[at] = out[at]! ^ (1 << rng.int(8));
  return out;
};

const setInteresting: Mutator = (bytes, rng, context) => {
  if (bytes.length === 0) return Buffer.from([rng.pick(INTERESTING_BYTES)]);
  const out = Buffer.from(bytes);
  out[position(out, rng, context.frameAt)] = rng.pick(INTERESTING_BYTES);
  return out;
};

const setRandom: Mutator = (bytes, rng, context) => {
  if (bytes.length === 0) return bytes;
  const out = Buffer.from(bytes);
  out[position(out, rng, context.frameAt)] = rng.int(256);
  return out;
};

const insertRandom: Mutator = (bytes, rng) => {
  const at = rng.int(bytes.length + 1);
  return Buffer.concat([bytes.subarray(0, at), rng.bytes(rng.range(1, 8)), bytes.subarray(at)]);
};

const deleteRange: Mutator = (bytes, rng) => {
  if (bytes.length === 0) return bytes;
  const at = rng.int(bytes.length);
  return Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + rangeLength(bytes, rng)))]);
};

const duplicateRange: Mutator = (bytes, rng) => {
  if (bytes.length === 0) return bytes;
  const from = rng.int(bytes.length);
  const copy = bytes.subarray(from, from + rangeLength(bytes, rng));
  const to = rng.int(bytes.length + 1);
  return Buffer.concat([bytes.subarray(0, to), copy, bytes.subarray(to)]);
};

const truncate: Mutator = (bytes, rng) => bytes.subarray(0, rng.int(bytes.length + 1));

const insertToken: Mutator = (bytes, rng, context) => {
  const at = rng.int(bytes.length + 1);
  const token = rng.pick(context.dictionary);
  if (rng.chance(0.3) && at + token.length <= bytes.length) {
    const out = Buffer.from(bytes);
    token.copy(out, at);
    return out;
  }
  return Buffer.concat([bytes.subarray(0, at), token, bytes.subarray(at)]);
};

/** Front of this input, back of another (both cut at random). */
const splice: Mutator = (bytes, rng, context) => {
  const other = context.other().bytes;
  return Buffer.concat([bytes.subarray(0, rng.int(bytes.length + 1)), other.subarray(rng.int(other.length + 1))]);
};

/** Offsets of the frame headers from `frameAt` on, walking the lengths as written. */
export function frameHeaders(bytes: Buffer, frameAt: number): number[] {
  const headers: number[] = [];
  let at = frameAt;
  while (at >= 0 && at + 2 <= bytes.length && headers.length < 64) {
    headers.push(at);
    const short = bytes[at + 1]! & 0x7f;
    const extended = short === 126 ? 2 : short === 127 ? 8 : 0;
    if (at + 2 + extended > bytes.length) break;
    const length = extended === 2 ? bytes.readUInt16BE(at + 2) : extended === 8 ? Number(bytes.readBigUInt64BE(at + 2)) : short;
    at += 2 + extended + (bytes[at + 1]! & 0x80 ? 4 : 0) + length;
  }
  return headers;
}

/** Rewrite one frame's length field: off by a little, an edge value, a longer (non-minimal) encoding, or the mask bit. */
const tweakLength: Mutator = (bytes, rng, context) => {
  const headers = frameHeaders(bytes, context.frameAt);
  if (headers.length === 0) return setInteresting(bytes, rng, context);
  const at = rng.pick(headers);
  const out = Buffer.from(bytes);
  const second = out[at + 1]!;
  const short = second & 0x7f;
  const extended = short === 126 ? 2 : short === 127 ? 8 : 0;
  if (at + 2 + extended > out.length) return out;
  const length = extended === 2 ? out.readUInt16BE(at + 2) : extended === 8 ? Number(out.readBigUInt64BE(at + 2)) : short;
  const maskBit = second & 0x80;
  const head = out.subarray(0, at + 1);
  const tail = out.subarray(at + 2 + extended);
  switch (rng.int(5)) {
    case 0: {
      // Off by a little, in the same encoding.
      const next = Math.max(0, length + rng.pick([-2, -1, 1, 2]));
      if (extended === 0) out[at + 1] = maskBit | Math.min(next, 125);
      else if (extended === 2) out.writeUInt16BE(Math.min(next, 0xffff), at + 2);
      else out.writeBigUInt64BE(BigInt(next), at + 2);
      return out;
    }
    case 1:
      // Only the 7-bit field: 126 and 127 make the next bytes a length.
      out[at + 1] = maskBit | rng.pick([0, 1, 125, 126, 127, rng.int(128)]);
      return out;
    case 2: {
      // The same length in a longer encoding than needed.
      const wide = Buffer.alloc(rng.chance(0.5) && length <= 0xffff ? 3 : 9);
      if (wide.length === 3) {
        wide[0] = maskBit | 126;
        wide.writeUInt16BE(length, 1);
      } else {
        wide[0] = maskBit | 127;
        wide.writeBigUInt64BE(BigInt(length), 1);
      }
      return Buffer.concat([head, wide, tail]);
    }
    case 3: {
      // An edge value in the 64-bit encoding, sometimes with its forbidden top bit.
      const wide = Buffer.alloc(9);
      wide[0] = maskBit | 127;
      wide.writeBigUInt64BE(BigInt(rng.pick(INTERESTING_LENGTHS)) | (rng.chance(0.2) ? 1n << 63n : 0n), 1);
      return Buffer.concat([head, wide, tail]);
    }
    default:
      out[at + 1] = second ^ 0x80;
      return out;
  }
};

/** Sizes at the edges: control frames (125), the 7/16/64-bit length encodings. */
const EDGE_SIZES = [0, 1, 2, 124, 125, 126, 127, 128, 0xffff, 0x10000] as const;

/** Give one frame a new payload size at an edge, in the minimal encoding, its payload cut or padded to match. */
const resizeFrame: Mutator = (bytes, rng, context) => {
  const headers = frameHeaders(bytes, context.frameAt);
  if (headers.length === 0) return setInteresting(bytes, rng, context);
  const at = rng.pick(headers);
  const second = bytes[at + 1]!;
  const short = second & 0x7f;
  const extended = short === 126 ? 2 : short === 127 ? 8 : 0;
  const payloadAt = at + 2 + extended + (second & 0x80 ? 4 : 0);
  if (payloadAt > bytes.length) return bytes;
  const declared = extended === 2 ? bytes.readUInt16BE(at + 2) : extended === 8 ? Number(bytes.readBigUInt64BE(at + 2)) : short;
  const payloadEnd = Math.min(bytes.length, payloadAt + declared);
  // The big sizes are rare: they make every later step slower.
  let size = rng.pick(context.sizes);
  if (size > 0xff00 && rng.chance(0.9)) size = rng.pick([124, 125, 126, 127]);
  const header = Buffer.alloc(size < 126 ? 2 : size < 0x10000 ? 4 : 10);
  header[0] = bytes[at]!;
  header[1] = (second & 0x80) | (size < 126 ? size : size < 0x10000 ? 126 : 127);
  if (size >= 126 && size < 0x10000) header.writeUInt16BE(size, 2);
  else if (size >= 0x10000) header.writeBigUInt64BE(BigInt(size), 2);
  const mask = bytes.subarray(at + 2 + extended, payloadAt);
  const old = bytes.subarray(payloadAt, payloadEnd);
  const payload = old.length >= size ? old.subarray(0, size) : Buffer.concat([old, rng.bytes(size - old.length)]);
  return Buffer.concat([bytes.subarray(0, at), header, mask, payload, bytes.subarray(payloadEnd)]);
};

const MUTATORS: ReadonlyArray<readonly [Mutator, number]> = [
  [resizeFrame, 2],
  [bitFlip, 4],
  [setInteresting, 4],
  [setRandom, 2],
  [insertRandom, 2],
  [deleteRange, 2],
  [duplicateRange, 2],
  [truncate, 1],
  [insertToken, 2],
  [splice, 2],
  [tweakLength, 4],
];
const MUTATOR_WEIGHT = MUTATORS.reduce((sum, [, weight]) => sum + weight, 0);

function pickMutator(rng: Rng): Mutator {
  let r = rng.int(MUTATOR_WEIGHT);
  for (const [mutator, weight] of MUTATORS) {
    if (r < weight) return mutator;
    r -= weight;
  }
  return bitFlip;
}

/** One fuzz input: a sample of `target`, left as is now and then, else with 1–8 stacked mutations. */
export function generate(target: Target, rng: Rng): FuzzInput {
  const sample = target.sample(rng);
  if (rng.chance(0.1)) return sample.expect === undefined ? { bytes: sample.bytes, pristine: true } : { bytes: sample.bytes, pristine: true, expect: sample.expect };
  const context: MutationContext = {
    frameAt: sample.frameAt,
    other: () => target.sample(rng),
    dictionary: target.dictionary === undefined ? SHARED_DICTIONARY : [...SHARED_DICTIONARY, ...target.dictionary],
    sizes: target.sizes === undefined ? EDGE_SIZES : [...EDGE_SIZES, ...target.sizes],
  };
  let bytes = sample.bytes;
  const count = rng.chance(0.5) ? 1 : rng.range(2, 8);
  for (let i = 0; i < count; i++) bytes = pickMutator(rng)(bytes, rng, context);
  return { bytes, pristine: false };
}

// ------------------------------------------------------------------ cutting a stream

/** Cut `bytes` into 1–`maxPieces` copies at random points (a zero-length piece now and then: a read of nothing). */
export function randomPieces(bytes: Uint8Array, rng: Rng, maxPieces = 12): Buffer[] {
  if (bytes.length === 0) return [Buffer.alloc(0)];
  // Now and then one byte at a time, for short inputs: every boundary is a split point.
  if (bytes.length <= 64 && rng.chance(0.05)) return Array.from(bytes, (byte) => Buffer.from([byte]));
  const count = rng.range(1, maxPieces);
  const points: number[] = [];
  for (let i = 1; i < count; i++) points.push(rng.int(bytes.length + 1));
  points.sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    pieces.push(Buffer.from(bytes.subarray(from, point)));
    from = point;
  }
  return pieces;
}

// ------------------------------------------------------------------ running

export interface Failure {
  target: string;
  seed: number;
  input: Buffer;
  error: unknown;
}

/** Run one case of `target` from its seed; the failure, or null. */
export function runCase(target: Target, seed: number): Failure | null {
  const input = generate(target, new Rng(seed));
  return checkInput(target, input, seed);
}

/** Check given bytes as case `seed` would (same split points and choices). */
export function checkInput(target: Target, input: FuzzInput, seed: number): Failure | null {
  try {
    // A copy: the protocol unmasks in place, and the failure report needs the bytes as they were.
    target.check({ ...input, bytes: Buffer.from(input.bytes) }, checkRng(seed));
    return null;
  } catch (error) {
    return { target: target.name, seed, input: input.bytes, error };
  }
}

export interface RunResult {
  target: string;
  cases: number;
  failures: Failure[];
  milliseconds: number;
}

export interface RunOptions {
  runSeed: number;
  /** Stop after this many cases… */
  cases?: number;
  /** …or after this many milliseconds, whichever comes first. */
  milliseconds?: number;
  /** Stop at the first failure (default), or keep going to count them. */
  stopAtFailure?: boolean;
}

/** Run cases of `target` until the case count or the time is used up. */
export function run(target: Target, options: RunOptions): RunResult {
  const started = performance.now();
  const deadline = options.milliseconds === undefined ? Infinity : started + options.milliseconds;
  const limit = options.cases ?? Infinity;
  const failures: Failure[] = [];
  let cases = 0;
  while (cases < limit && performance.now() < deadline) {
    const failure = runCase(target, caseSeed(options.runSeed, cases));
    cases++;
    if (failure !== null) {
      failures.push(failure);
      if (options.stopAtFailure !== false) break;
    }
  }
  return { target: target.name, cases, failures, milliseconds: performance.now() - started };
}

/**
 * A smaller input that still fails (any failure): drop ranges, halving their
 * size, while the check keeps failing. Split points move with the length, so
 * what is kept is "fails with this seed", not "fails the same way".
 */
export function shrink(target: Target, failure: Failure, budgetMs = 2000): Failure {
  const deadline = performance.now() + budgetMs;
  let best = failure;
  for (let size = best.input.length >> 1; size >= 1 && performance.now() < deadline; size = size >> 1) {
    for (let at = 0; at + size <= best.input.length && performance.now() < deadline; ) {
      const candidate = Buffer.concat([best.input.subarray(0, at), best.input.subarray(at + size)]);
      const result = checkInput(target, { bytes: candidate, pristine: false }, best.seed);
      if (result !== null) best = result;
      else at += size;
    }
  }
  return best;
}

// ------------------------------------------------------------------ reporting

/** `xxd`-style hex dump: offset, 16 bytes in hex, the same as Latin-1 text. */
export function hexDump(bytes: Uint8Array, maxBytes = 1024): string {
  const lines: string[] = [];
  const shown = Math.min(bytes.length, maxBytes);
  for (let at = 0; at < shown; at += 16) {
    const row = bytes.subarray(at, Math.min(at + 16, shown));
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const text = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${at.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${text}`);
  }
  if (bytes.length > shown) lines.push(`… ${bytes.length - shown} more bytes`);
  return lines.join('\n');
}

/** Everything needed to replay a failure: target, seed, the error and the input (whole in hex up to `maxHex` bytes). */
export function describeFailure(failure: Failure, maxHex = 4096): string {
  const error = failure.error instanceof Error ? (failure.error.stack ?? failure.error.message) : String(failure.error);
  const input = failure.input;
  return [
    `target ${failure.target}, case seed 0x${failure.seed.toString(16).padStart(8, '0')} (${input.length} bytes)`,
    `replay: node dist/spec/fuzz/run.js --target ${failure.target} --case 0x${failure.seed.toString(16)}`,
    error,
    input.length <= maxHex ? `input (hex): ${input.toString('hex')}` : `input: ${input.length} bytes, first ${Math.min(input.length, 512)} below`,
    hexDump(input, 512),
  ].join('\n');
}
