/**
 * Fuzz target for close frame payloads: decodeClosePayload alone, against an
 * oracle written here, and the same payload in a close frame received by an
 * open ServerProtocol.
 *
 * Properties:
 * - only ProtocolError escapes, with 1002 (length 1, a code that may not be
 *   sent) or 1007 (a reason that is not UTF-8), exactly when the oracle says;
 * - a payload that decodes encodes back to the same bytes (reason ≤ 123
 *   bytes), and encodeClosePayload refuses what decoding refused;
 * - in a frame: the close event carries the decoded code and reason and is
 *   echoed, or the connection fails with the same code (1002 for a payload
 *   over 125 bytes: a control frame).
 */
import assert from 'node:assert/strict';
import { decodeClosePayload, encodeClosePayload, ProtocolError, ServerProtocol, type CloseInfo } from '../../lib/protocol/index.js';
import { encodeFrame, OP } from '../support.js';
import { request } from '../protocol/helpers.js';
import { validClosePayload } from './corpus.js';
import { Tally, type FuzzInput, type Rng, type Sample, type Target } from './engine.js';
import { sendableCloseCode } from './wire.js';

/** ignoreBOM: a leading U+FEFF is part of the reason, not a byte-order mark to drop (the fuzzer's first catch was this oracle). */
const FATAL_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** What decoding `payload` must give: the code and reason, or the close code it fails with. */
function oracle(payload: Buffer): CloseInfo | number {
  if (payload.length === 0) return { code: 1005, reason: '' };
  if (payload.length === 1) return 1002;
  const code = payload.readUInt16BE(0);
  if (!sendableCloseCode(code)) return 1002;
  try {
    return { code, reason: FATAL_UTF8.decode(payload.subarray(2)) };
  } catch {
    return 1007;
  }
}

function decode(payload: Buffer): CloseInfo | number {
  try {
    return decodeClosePayload(payload);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return error.closeCode;
  }
}

/** The payload in a close frame from a client, to a server that accepted it. */
function throughProtocol(payload: Buffer): { event: string | null; failure: number | null } {
  const server = new ServerProtocol();
  server.receiveData(request());
  server.eventsReceived();
  server.sendResponse(server.accept());
  server.dataToSend();
  // encodeFrame writes any length; a control payload over 125 bytes is the protocol's to refuse.
  server.receiveData(encodeFrame(OP.CLOSE, payload, { mask: [1, 2, 3, 4] }));
  const events = server.eventsReceived();
  assert.ok(events.length <= 1, 'one close event at most');
  const event = events[0];
  if (event !== undefined) assert.equal(event.type, 'close');
  return {
    event: event?.type === 'close' ? `${event.code} ${JSON.stringify(event.reason)}` : null,
    failure: server.failure?.closeCode ?? null,
  };
}

export const closeTarget: Target = {
  name: 'close',
  tally: new Tally(),
  about: 'decodeClosePayload and encodeClosePayload against an oracle, and the payload in a received close frame',
  dictionary: [
    [0x03, 0xe8],
    [0x03, 0xed],
    [0x03, 0xee],
    [0x03, 0xec],
    [0x03, 0xf7],
    [0x0b, 0xb8],
    [0x13, 0x87],
    [0x13, 0x88],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0xc0, 0xaf],
  ].map((bytes) => Buffer.from(bytes)),
  sample(rng: Rng): Sample {
    return { bytes: validClosePayload(rng), frameAt: -1 };
  },
  check(input: FuzzInput): void {
    const payload = input.bytes;
    const expected = oracle(payload);
    const actual = decode(Buffer.from(payload));
    assert.deepEqual(actual, expected, 'decodeClosePayload disagrees with the oracle');
    this.tally.add(typeof actual === 'number' ? `fails ${actual}` : actual.code === 1005 ? 'empty' : 'decoded');
    if (input.pristine) assert.equal(typeof actual, 'object', 'a valid payload was refused');
    if (typeof actual === 'object' && payload.length > 0) {
      const fits = payload.length - 2 <= 123;
      try {
        assert.ok(encodeClosePayload(actual.code, actual.reason).equals(payload), 'encode(decode(payload)) is the payload');
        assert.ok(fits, 'a reason over 123 bytes was encoded');
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        assert.ok(!fits, `encodeClosePayload refused ${actual.code}: ${error.message}`);
      }
    }
    const received = throughProtocol(Buffer.from(payload));
    if (payload.length > 125) {
      assert.deepEqual(received, { event: null, failure: 1002 }, 'a close payload over 125 bytes fails with 1002');
    } else if (typeof expected === 'number') {
      assert.deepEqual(received, { event: null, failure: expected }, 'an invalid close payload fails the connection');
    } else {
      assert.deepEqual(received, { event: `${expected.code} ${JSON.stringify(expected.reason)}`, failure: null }, 'the close event');
    }
  },
};
