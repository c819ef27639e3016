/**
 * Fuzz target for the UTF-8 validator (lib/protocol/utf8.ts), whole and fed
 * in random pieces, against Node's `buffer.isUtf8` and
 * `new TextDecoder('utf-8', { fatal: true })`.
 *
 * Properties:
 * - Utf8Validator (feed + end), isValidUtf8, isUtf8 and the fatal decoder
 *   agree on every input;
 * - fed in pieces, the validator refuses at the very piece where a streaming
 *   fatal decoder first throws (fail fast, never early), and where the bytes
 *   so far can no longer be completed to UTF-8 (checked with isUtf8 and every
 *   kind of completion);
 * - one validator reused across inputs (end() resets it) answers as a fresh one.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { isValidUtf8, Utf8Validator } from '../../lib/protocol/utf8.js';
import { utf8Bytes } from './corpus.js';
import { completable } from './model.js';
import { randomPieces, Tally, type FuzzInput, type Rng, type Sample, type Target } from './engine.js';

function fatalDecoderAccepts(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** The piece at which a streaming fatal decoder first throws; pieces.length if only the final flush does; -1 if never. */
function decoderFailsAt(pieces: readonly Buffer[]): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < pieces.length; i++) {
    try {
      decoder.decode(pieces[i], { stream: true });
    } catch {
      return i;
    }
  }
  try {
    decoder.decode();
    return -1;
  } catch {
    return pieces.length;
  }
}

/** Reused across cases: end() must leave nothing of one input for the next. */
const reused = new Utf8Validator();

export const utf8Target: Target = {
  name: 'utf8',
  tally: new Tally(),
  about: 'Utf8Validator whole and in pieces against buffer.isUtf8 and a fatal TextDecoder (fail-fast position too)',
  dictionary: [
    [0xc0, 0x80],
    [0xc1, 0xbf],
    [0xc2],
    [0xe0, 0x80, 0x80],
    [0xe0, 0xa0],
    [0xed, 0xa0, 0x80],
    [0xed, 0x9f, 0xbf],
    [0xef, 0xbf, 0xbf],
    [0xf0, 0x8f, 0xbf, 0xbf],
    [0xf0, 0x90, 0x80],
    [0xf4, 0x8f, 0xbf, 0xbf],
    [0xf4, 0x90, 0x80, 0x80],
    [0xf5],
    [0xff],
    [0x80],
  ].map((bytes) => Buffer.from(bytes)),
  sample(rng: Rng): Sample {
    return { bytes: utf8Bytes(rng), frameAt: -1 };
  },
  check(input: FuzzInput, rng: Rng): void {
    const bytes = input.bytes;
    const valid = isUtf8(bytes);
    assert.equal(fatalDecoderAccepts(bytes), valid, 'buffer.isUtf8 and the fatal TextDecoder disagree');
    if (input.pristine) assert.ok(valid, 'a sample is not UTF-8');
    assert.equal(isValidUtf8(bytes), valid, 'isValidUtf8');
    const fresh = new Utf8Validator();
    assert.equal(fresh.feed(bytes) && fresh.end(), valid, 'Utf8Validator fed the whole input');

    const pieces = randomPieces(bytes, rng, 16);
    const cuts = pieces.map((p) => p.length).join('+');
    let failedAt = -1;
    let seen = 0;
    for (let i = 0; i < pieces.length && failedAt === -1; i++) {
      const ok = reused.feed(pieces[i]!);
      seen += pieces[i]!.length;
      const prefix = bytes.subarray(0, seen);
      assert.equal(ok, completable(prefix), `cut at ${cuts}: piece ${i} ${ok ? 'accepted' : 'refused'}, isUtf8 says otherwise`);
      if (!ok) failedAt = i;
    }
    const complete = reused.end();
    if (failedAt === -1 && !complete) failedAt = pieces.length;
    assert.equal(failedAt, decoderFailsAt(pieces), `cut at ${cuts}: refused at another piece than the streaming decoder`);
    assert.equal(failedAt === -1, valid, `cut at ${cuts}: the pieces' verdict`);
    this.tally.add(valid ? 'valid' : failedAt === pieces.length ? 'incomplete at the end' : failedAt === pieces.length - 1 ? 'refused at the last piece' : 'refused before the last piece');
  },
};
