/**
 * Fuzz target for the HTTP/1.1 head parser alone (lib/protocol/http1.ts):
 * HeadCollector fed mutated requests and responses cut at random, then the
 * request line, status line and header fields parsed as the protocols do.
 *
 * Properties:
 * - only HeadParseError escapes, with 400 or 431 (502 for a status line);
 * - the limits hold: a head over maxHeadBytes or with more than maxHeaders
 *   fields is refused with 431, before the head ends if need be, and the
 *   outcome (incomplete, refused with which status, or which head) is the one
 *   a plain oracle written here predicts from the whole input;
 * - cutting the input elsewhere changes nothing, and the bytes after the head
 *   come back untouched;
 * - a parsed request reads the same when parsed again from its text (the
 *   server keeps only the text once open); a response serialised from the
 *   parsed fields parses back to them.
 */
import assert from 'node:assert/strict';
import { ReceivedRequest, toHandshakeRequest } from '../../lib/protocol/handshake.js';
import {
  DEFAULT_HEAD_LIMITS,
  HeadCollector,
  HeadParseError,
  parseStatusLine,
  serializeResponse,
  type HeadLimits,
  type ParsedHead,
} from '../../lib/protocol/http1.js';
import { requestHead, responseHead } from './corpus.js';
import { fold, predictHead, requestLineParses, TOKEN } from './model.js';
import { randomPieces, Tally, type FuzzInput, type Rng, type Sample, type Target } from './engine.js';

const LIMITS: readonly HeadLimits[] = [{ maxHeadBytes: 256, maxHeaders: 6 }, { maxHeadBytes: 1024, maxHeaders: 24 }, DEFAULT_HEAD_LIMITS];

type Result =
  | { kind: 'incomplete' }
  | { kind: 'refused'; status: number }
  | { kind: 'head'; head: ParsedHead; rest: Buffer };

/** Push `pieces` as a protocol would; the bytes after the head are what the frame reader would get. */
function collect(pieces: readonly Buffer[], limits: HeadLimits): Result {
  const collector = new HeadCollector(limits);
  for (let i = 0; i < pieces.length; i++) {
    let complete: ReturnType<HeadCollector['push']>;
    try {
      complete = collector.push(pieces[i]!);
    } catch (error) {
      if (!(error instanceof HeadParseError)) throw error;
      assert.ok(error.status === 400 || error.status === 431, `HeadParseError with status ${error.status}`);
      return { kind: 'refused', status: error.status };
    }
    if (complete !== null) return { kind: 'head', head: complete.head, rest: Buffer.concat([complete.rest, ...pieces.slice(i + 1)]) };
  }
  return { kind: 'incomplete' };
}

function summary(result: Result): string {
  if (result.kind === 'incomplete') return 'incomplete';
  if (result.kind === 'refused') return `refused ${result.status}`;
  return `head ${JSON.stringify(result.head.text)} + ${result.rest.toString('hex')}`;
}

/** A request head parsed again from its text must read the same (the server keeps only the text once open). */
function checkRequest(head: ParsedHead): 'parsed' | 'refused' {
  let first: ReceivedRequest;
  try {
    first = toHandshakeRequest(head);
  } catch (error) {
    if (!(error instanceof HeadParseError)) throw error;
    assert.equal(error.status, 400, 'a bad request line is a 400');
    assert.ok(!requestLineParses(head.startLine), `request line ${JSON.stringify(head.startLine)} refused`);
    return 'refused';
  }
  assert.ok(requestLineParses(head.startLine), `request line ${JSON.stringify(head.startLine)} accepted`);
  assert.equal(`${first.method} ${first.target} ${first.httpVersion}`, head.startLine, 'the request line is its three parts');
  assert.match(first.method, TOKEN);
  assert.ok(!first.target.includes(' '), 'no space in the target');
  const again = new ReceivedRequest(head.text);
  for (const field of ['method', 'target', 'httpVersion', 'path'] as const) assert.equal(again[field], first[field], `${field} parsed again`);
  assert.deepEqual(new Map(Object.entries(again.headers)), new Map(Object.entries(first.headers)), 'headers parsed again');
  assert.deepEqual(again.rawHeaders, first.rawHeaders, 'raw headers parsed again');
  assert.deepEqual(again.subprotocols, first.subprotocols, 'subprotocols parsed again');
  assert.equal(again.query.toString(), first.query.toString(), 'query parsed again');
  return 'parsed';
}

function checkStatusLine(line: string): 'parsed' | 'refused' {
  try {
    const { version, status, reason } = parseStatusLine(line);
    assert.ok(status >= 0 && status <= 999);
    const rebuilt = `${version} ${String(status).padStart(3, '0')}${line.length > 12 ? ` ${reason}` : ''}`;
    assert.equal(rebuilt, line, 'the status line is its parts');
    return 'parsed';
  } catch (error) {
    if (!(error instanceof HeadParseError)) throw error;
    assert.equal(error.status, 502, 'a bad status line is a 502');
    return 'refused';
  }
}

/** Serialise the fields as a response and parse it back: the same fields. */
function checkRoundTrip(head: ParsedHead): void {
  const raw = head.rawHeaders;
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  const bytes = serializeResponse(101, 'Switching Protocols', pairs);
  const back = new HeadCollector({ maxHeadBytes: bytes.length, maxHeaders: pairs.length }).push(bytes);
  assert.ok(back !== null, 'a serialised head is whole');
  assert.equal(back.rest.length, 0);
  assert.equal(back.head.startLine, 'HTTP/1.1 101 Switching Protocols');
  assert.deepEqual(back.head.rawHeaders, raw, 'fields after a round trip');
}

export const http1Target: Target = {
  name: 'http1',
  tally: new Tally(),
  about: 'HeadCollector and the request/status line and field parsers, against a plain oracle',
  dictionary: ['\r\n\r\n', 'HTTP/1.1', 'GET ', ' / ', 'Host: a\r\n', ':', 'a'.repeat(300), '\r\nX: y', ' \t'].map((s) => Buffer.from(s, 'latin1')),
  sample(rng: Rng): Sample {
    const head = rng.chance(0.6) ? requestHead(rng).bytes : responseHead(rng).bytes;
    // Bytes after the head (frames, a body) must come back untouched.
    const after = rng.chance(0.5) ? rng.bytes(rng.range(1, 20)) : Buffer.alloc(0);
    return { bytes: Buffer.concat([head, after]), frameAt: -1 };
  },
  check(input: FuzzInput, rng: Rng): void {
    const limits = rng.pick(LIMITS);
    const whole = collect([Buffer.from(input.bytes)], limits);
    const pieces = randomPieces(input.bytes, rng);
    const split = collect(pieces, limits);
    assert.equal(summary(split), summary(whole), `cut at ${pieces.map((p) => p.length).join('+')}: another result`);
    const expected = predictHead(input.bytes, limits);
    this.tally.add(whole.kind === 'refused' ? `refused ${whole.status}` : whole.kind);
    assert.equal(whole.kind, expected.kind, `limits ${JSON.stringify(limits)}: ${summary(whole)}, oracle says ${JSON.stringify(expected)}`);
    if (whole.kind === 'refused' && expected.kind === 'refused') assert.equal(whole.status, expected.status, 'refusal status');
    if (whole.kind !== 'head' || expected.kind !== 'head') return;
    const head = whole.head;
    assert.equal(head.text, expected.text, 'the head text');
    assert.ok(head.text.length + 4 <= limits.maxHeadBytes, 'head within maxHeadBytes');
    assert.ok(head.rawHeaders.length / 2 <= limits.maxHeaders, 'fields within maxHeaders');
    assert.deepEqual(head.rawHeaders, expected.raw, 'the fields');
    assert.deepEqual(new Map(Object.entries(head.headers)), fold(expected.raw), 'the folded fields');
    assert.ok(whole.rest.equals(input.bytes.subarray(head.text.length + 4)), 'the bytes after the head');
    if (head.startLine.startsWith('HTTP/')) this.tally.add(`status line ${checkStatusLine(head.startLine)}`);
    else this.tally.add(`request line ${checkRequest(head)}`);
    checkRoundTrip(head);
  },
};
