/** RFC 6455 §8.1 (and RFC 3629): text must be UTF-8; invalid → 1007, as soon as the bad byte arrives. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { Utf8Validator, isValidUtf8 } from '../../lib/protocol/index.js';
import { OP, Rng, assertFailed, assertQuiet, cont, frame, hex, openServer, text } from './helpers.js';

/**
 * Reference check, written from RFC 3629 Table 3-7 independently of lib/:
 * the index of the first byte at which `bytes` stops being a prefix of valid
 * UTF-8 (-1 if none), and whether it ends on a code point boundary.
 */
function reference(bytes: Uint8Array): { bad: number; complete: boolean } {
  let need = 0;
  let lo = 0x80;
  let hi = 0xbf;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (need > 0) {
      if (b < lo || b > hi) return { bad: i, complete: false };
      need--;
      lo = 0x80;
      hi = 0xbf;
    } else if (b <= 0x7f) {
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
    } else if (b === 0xe0) {
      need = 2;
      lo = 0xa0;
    } else if (b === 0xed) {
      need = 2;
      hi = 0x9f;
    } else if (b >= 0xe1 && b <= 0xef) {
      need = 2;
    } else if (b === 0xf0) {
      need = 3;
      lo = 0x90;
    } else if (b === 0xf4) {
      need = 3;
      hi = 0x8f;
    } else if (b >= 0xf1 && b <= 0xf3) {
      need = 3;
    } else {
      return { bad: i, complete: false };
    }
  }
  return { bad: -1, complete: need === 0 };
}

/** Byte strings that look like UTF-8 and often are not: the interesting cases for a validator. */
function trickyBytes(rng: Rng, maxTokens: number): Buffer {
  const parts: number[] = [];
  const count = rng.range(0, maxTokens);
  const edges = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff];
  for (let t = 0; t < count; t++) {
    const kind = rng.int(10);
    if (kind < 5) parts.push(...Buffer.from(rng.unicode(1)));
    else if (kind < 7) parts.push(rng.pick(edges));
    else if (kind < 8) parts.push(rng.range(0x80, 0xbf));
    else if (kind < 9) parts.push(...Buffer.from(rng.unicode(1)).subarray(0, rng.range(1, 3)));
    else parts.push(rng.int(256));
  }
  return Buffer.from(parts);
}

describe('§8.1 valid text', () => {
  const boundaries: Array<[string, string]> = [
    ['U+0000', '\u0000'],
    ['U+007F', '\u007f'],
    ['U+0080', '\u0080'],
    ['U+07FF', '\u07ff'],
    ['U+0800', '\u0800'],
    ['U+D7FF', '\ud7ff'],
    ['U+E000', '\ue000'],
    ['U+FFFD', '\ufffd'],
    ['U+FFFF', '\uffff'],
    ['U+10000', '\u{10000}'],
    ['U+10FFFF', '\u{10ffff}'],
    ['κόσμε', 'κόσμε'],
    ['mixed', 'a\u0080\u07ff\u0800\uffff\u{10000}\u{10ffff}z'],
  ];
  for (const [name, s] of boundaries) {
    test(`${name} (${Buffer.from(s).toString('hex')}) in a single frame, in fragments and byte by byte`, () => {
      const bytes = Buffer.from(s);
      const whole = openServer();
      assert.deepEqual(whole.feed(text(bytes)).events, [{ type: 'message', data: s }]);

      const fragmented = openServer();
      const frames = [...bytes].map((b, i) => (i === 0 ? text([b], { fin: bytes.length === 1 }) : cont([b], { fin: i === bytes.length - 1 })));
      assert.deepEqual(fragmented.feed(...frames).events, [{ type: 'message', data: s }]);

      const bytewise = openServer();
      const steps = bytewise.feedBytewise(text(bytes));
      assert.deepEqual(steps.at(-1)!.events, [{ type: 'message', data: s }]);
      assert.equal(bytewise.p.failure, null);
    });
  }
});

describe('§8.1 invalid text → 1007', () => {
  // [name, bytes around which "ab" … "cd" is wrapped, whether the failure needs the end of the message]
  const cases: Array<[string, string, boolean]> = [
    ['overlong NUL C0 80', 'c080', false],
    ['overlong C1 BF', 'c1bf', false],
    ['overlong 3-byte E0 80 80', 'e08080', false],
    ['overlong 3-byte E0 9F BF', 'e09fbf', false],
    ['overlong 4-byte F0 80 80 80', 'f0808080', false],
    ['overlong 4-byte F0 8F BF BF', 'f08fbfbf', false],
    ['surrogate ED A0 80 (U+D800)', 'eda080', false],
    ['surrogate ED BF BF (U+DFFF)', 'edbfbf', false],
    ['surrogate pair ED A0 BD ED B8 80', 'eda0bdedb880', false],
    ['above U+10FFFF F4 90 80 80', 'f4908080', false],
    ['F5 80 80 80', 'f5808080', false],
    ['F7 BF BF BF', 'f7bfbfbf', false],
    ['F8 88 80 80 80', 'f888808080', false],
    ['FC 84 80 80 80 80', 'fc8480808080', false],
    ['FE', 'fe', false],
    ['FF', 'ff', false],
    ['lone continuation 80', '80', false],
    ['lone continuation BF', 'bf', false],
    ['two continuations after a 2-byte char', 'c3a9a9', false],
    ['a lead followed by ASCII E2 28 A1', 'e228a1', false],
    ['a 4-byte lead followed by a 2-byte lead', 'f0c3a9', false],
  ];
  for (const [name, bad] of cases) {
    test(`${name} → 1007, no message`, () => {
      const payload = Buffer.concat([Buffer.from('ab'), hex(bad), Buffer.from('cd')]);
      assert.equal(isUtf8(payload), false, 'the case really is invalid');
      const wire = openServer();
      const step = wire.feed(text(payload));
      assertFailed(wire, step, 1007);
      assert.deepEqual(step.events, []);
    });
  }

  const truncated: Array<[string, string]> = [
    ['C2', 'c2'],
    ['E2 82', 'e282'],
    ['F0 9F 98', 'f09f98'],
    ['F4 8F BF', 'f48fbf'],
  ];
  for (const [name, tail] of truncated) {
    test(`a message ending inside a code point (${name}) → 1007 when the final frame ends, not before`, () => {
      const wire = openServer();
      assertQuiet(wire, wire.feed(text(Buffer.concat([Buffer.from('ok '), hex(tail)]), { fin: false })));
      const last = wire.feed(cont(''));
      assertFailed(wire, last, 1007);
      assert.deepEqual(last.events, []);

      const single = openServer();
      const f = text(Buffer.concat([Buffer.from('ok '), hex(tail)]));
      const steps = single.feedBytewise(f);
      for (const step of steps.slice(0, -1)) assertQuiet(single, step);
      assertFailed(single, steps.at(-1)!, 1007);
    });
  }

  test('a truncated code point completed by the next fragment is fine', () => {
    const wire = openServer();
    const step = wire.feed(text(hex('f09f'), { fin: false }), cont(hex('98'), { fin: false }), cont(hex('80')));
    assert.deepEqual(step.events, [{ type: 'message', data: '😀' }]);
  });

  test('invalid bytes in a binary message are fine', () => {
    const wire = openServer();
    const step = wire.feed(frame(OP.BINARY, hex('c080eda080f4908080ff')));
    assert.equal(step.events.length, 1);
    assert.equal(wire.p.failure, null);
  });
});

describe('§8.1 fail fast: 1007 at the piece where the invalid byte arrives', () => {
  const kosme = Buffer.from('κόσμε');

  test('Autobahn 6.4.1: fragments "κόσμε" | F4 90 80 80 | "edited" → failure at the second fragment', () => {
    const wire = openServer();
    assertQuiet(wire, wire.feed(text(kosme, { fin: false })));
    const second = wire.feed(cont(hex('f4908080'), { fin: false }));
    assertFailed(wire, second, 1007);
    const third = wire.feed(cont('edited'));
    assert.deepEqual(third.events, []);
    assert.equal(third.frames.length, 0);
  });

  test('Autobahn 6.4.2: fragments "κόσμε" F4 | 90 | 80 80 "edited" → failure right after the fragment with 0x90', () => {
    const wire = openServer();
    assertQuiet(wire, wire.feed(text(Buffer.concat([kosme, hex('f4')]), { fin: false })));
    const second = wire.feed(cont(hex('90'), { fin: false }));
    assertFailed(wire, second, 1007);
    const third = wire.feed(cont(Buffer.concat([hex('8080'), Buffer.from('edited')])));
    assert.deepEqual(third.events, []);
  });

  test('Autobahn 6.4.3: one frame, chunks "κόσμε" | F4 90 80 80 | "edited" → failure at the second chunk, before the frame ends', () => {
    const payload = Buffer.concat([kosme, hex('f4908080'), Buffer.from('edited')]);
    const f = text(payload);
    const headerSize = 6;
    const wire = openServer();
    assertQuiet(wire, wire.feed(f.subarray(0, headerSize + kosme.length)));
    const bad = wire.feed(f.subarray(headerSize + kosme.length, headerSize + kosme.length + 4));
    assertFailed(wire, bad, 1007);
    assert.deepEqual(wire.feed(f.subarray(headerSize + kosme.length + 4)).events, []);
  });

  test('Autobahn 6.4.4: one frame, chunks "κόσμε" F4 | 90 | 80 80 "edited" → failure at the chunk holding 0x90', () => {
    const payload = Buffer.concat([kosme, hex('f4908080'), Buffer.from('edited')]);
    const f = text(payload);
    const at = 6 + kosme.length + 1;
    const wire = openServer();
    assertQuiet(wire, wire.feed(f.subarray(0, at)));
    assertFailed(wire, wire.feed(f.subarray(at, at + 1)), 1007);
  });

  test('a single large frame fed in 1 KiB chunks fails at the chunk holding the bad byte', () => {
    const payload = Buffer.alloc(20_000, 0x61);
    payload[12_345] = 0xff;
    const f = text(payload);
    const wire = openServer();
    const badAt = 8 + 12_345; // 16-bit length header (4) + mask (4)
    for (let at = 0; at < f.length; at += 1024) {
      const step = wire.feed(f.subarray(at, at + 1024));
      if (at + 1024 <= badAt) assertQuiet(wire, step);
      else {
        assertFailed(wire, step, 1007);
        assert.ok(at <= badAt);
        break;
      }
    }
  });

  for (const [name, seq, offset] of [
    ['E0 80 (overlong, caught at its second byte)', 'e080', 1],
    ['ED A0 (surrogate, caught at its second byte)', 'eda0', 1],
    ['F0 8F (overlong 4-byte)', 'f08f', 1],
    ['F4 90 (above U+10FFFF)', 'f490', 1],
    ['C0 (never valid)', 'c0', 0],
    ['F5 (never valid)', 'f5', 0],
    ['80 (lone continuation)', '80', 0],
    ['E2 82 41 (ASCII where a continuation must be)', 'e28241', 2],
  ] as const) {
    test(`byte by byte: ${name} fails at exactly the offending byte`, () => {
      const payload = Buffer.concat([Buffer.from('héllo '), hex(seq), Buffer.from(' and more text after it')]);
      const f = text(payload);
      const badAt = 6 + Buffer.byteLength('héllo ') + offset;
      const wire = openServer();
      const steps = wire.feedBytewise(f);
      for (let i = 0; i < badAt; i++) assertQuiet(wire, steps[i]!);
      assertFailed(wire, steps[badAt]!, 1007);
      for (const step of steps.slice(badAt + 1)) {
        assert.deepEqual(step.events, []);
        assert.equal(step.frames.length, 0);
      }
    });
  }

  test('property: random text payloads, random fragments and chunks → failure exactly at the first bad byte', () => {
    const rng = new Rng(8_1);
    let failures = 0;
    let truncations = 0;
    let valid = 0;
    for (let round = 0; round < 400; round++) {
      // Mostly valid text with a few tricky bytes somewhere, sometimes ending inside a code point.
      const tail = rng.chance(0.3) ? Buffer.from(rng.unicode(1)).subarray(0, rng.range(1, 3)) : Buffer.from(rng.unicode(rng.range(0, 20)));
      const payload = Buffer.concat([Buffer.from(rng.unicode(rng.range(0, 20))), trickyBytes(rng, 4), tail]);
      const ref = reference(payload);
      // Fragments.
      const cuts = [...new Set(Array.from({ length: rng.range(0, 4) }, () => rng.range(0, payload.length)))].sort((a, b) => a - b);
      const points = [0, ...cuts, payload.length];
      const frames: Buffer[] = [];
      const payloadOffsets: number[] = []; // stream offset of each payload byte
      let streamLength = 0;
      for (let i = 0; i + 1 < points.length; i++) {
        const piece = payload.subarray(points[i], points[i + 1]);
        const fin = i + 2 === points.length;
        const f = i === 0 ? text(piece, { fin }) : cont(piece, { fin });
        const headerSize = f.length - piece.length;
        for (let k = 0; k < piece.length; k++) payloadOffsets.push(streamLength + headerSize + k);
        frames.push(f);
        streamLength += f.length;
      }
      const stream = Buffer.concat(frames);
      const expectedAt = ref.bad >= 0 ? payloadOffsets[ref.bad]! : ref.complete ? -1 : stream.length - 1;
      // Chunks.
      const wire = openServer();
      let at = 0;
      let failedAt = -1;
      while (at < stream.length) {
        const size = rng.range(1, 9);
        const step = wire.feed(stream.subarray(at, at + size));
        if (wire.p.failure && failedAt === -1) {
          failedAt = at;
          assertFailed(wire, step, 1007);
          assert.ok(
            expectedAt >= at && expectedAt < at + size,
            `round ${round}: failed in chunk [${at}, ${at + size}) but the first bad byte is at ${expectedAt} (payload ${payload.toString('hex')})`,
          );
        }
        at += size;
      }
      if (expectedAt === -1) {
        assert.equal(wire.p.failure, null, `round ${round}: valid ${payload.toString('hex')}`);
        assert.deepEqual(wire.allEvents.slice(1), [{ type: 'message', data: payload.toString('utf8') }]);
        valid++;
      } else {
        assert.notEqual(failedAt, -1, `round ${round}: should have failed (${payload.toString('hex')})`);
        if (ref.bad >= 0) failures++;
        else truncations++;
      }
    }
    assert.ok(failures > 50 && valid > 50 && truncations > 5, `coverage of the property: ${failures}/${truncations}/${valid}`);
  });
});

describe('Utf8Validator', () => {
  const rng = new Rng(3629);

  test('the reference agrees with buffer.isUtf8 (sanity check of the test itself)', () => {
    for (let i = 0; i < 3000; i++) {
      const bytes = trickyBytes(rng, 12);
      const ref = reference(bytes);
      assert.equal(ref.bad === -1 && ref.complete, isUtf8(bytes), bytes.toString('hex'));
    }
  });

  test('random valid strings split at every position: feed(a), feed(b) and end() are all true', () => {
    for (let round = 0; round < 60; round++) {
      const bytes = Buffer.from(rng.unicode(rng.range(1, 12)));
      for (let cut = 0; cut <= bytes.length; cut++) {
        const v = new Utf8Validator();
        assert.equal(v.feed(bytes.subarray(0, cut)), true, `${bytes.toString('hex')} @${cut}`);
        assert.equal(v.feed(bytes.subarray(cut)), true, `${bytes.toString('hex')} @${cut}`);
        assert.equal(v.end(), true);
      }
      // And fed one byte at a time.
      const v = new Utf8Validator();
      for (const b of bytes) assert.equal(v.feed(Buffer.from([b])), true);
      assert.equal(v.end(), true);
    }
  });

  test('verdict equals buffer.isUtf8 on thousands of random byte arrays, split at random', () => {
    let agreeValid = 0;
    for (let round = 0; round < 5000; round++) {
      const bytes = round % 3 === 0 ? rng.bytes(rng.range(0, 24)) : trickyBytes(rng, 16);
      const pieces: Buffer[] = [];
      let at = 0;
      while (at < bytes.length) {
        const size = rng.range(0, 6);
        pieces.push(bytes.subarray(at, at + size));
        at += size;
      }
      const v = new Utf8Validator();
      let ok = true;
      for (const piece of pieces) {
        if (!v.feed(piece)) {
          ok = false;
          break;
        }
      }
      const verdict = ok && v.end();
      assert.equal(verdict, isUtf8(bytes), `${bytes.toString('hex')} split ${pieces.map((p) => p.length)}`);
      if (verdict) agreeValid++;
    }
    assert.ok(agreeValid > 500, `enough valid samples (${agreeValid})`);
  });

  test('feed() returns false at the piece holding the first bad byte, never earlier or later', () => {
    for (let round = 0; round < 3000; round++) {
      const bytes = trickyBytes(rng, 16);
      const ref = reference(bytes);
      const v = new Utf8Validator();
      let at = 0;
      let failedPiece: [number, number] | null = null;
      while (at < bytes.length) {
        const size = rng.range(1, 5);
        if (!v.feed(bytes.subarray(at, at + size))) {
          failedPiece = [at, at + size];
          break;
        }
        at += size;
      }
      if (ref.bad === -1) {
        assert.equal(failedPiece, null, bytes.toString('hex'));
        assert.equal(v.end(), ref.complete);
      } else {
        assert.ok(failedPiece, `should fail: ${bytes.toString('hex')}`);
        assert.ok(ref.bad >= failedPiece[0] && ref.bad < failedPiece[1], `${bytes.toString('hex')}: bad at ${ref.bad}, failed in ${failedPiece}`);
      }
    }
  });

  test('end() is false inside a code point and resets the validator', () => {
    const v = new Utf8Validator();
    assert.equal(v.feed(hex('e282')), true);
    assert.equal(v.end(), false);
    assert.equal(v.feed(Buffer.from('A')), true, 'no leftover state');
    assert.equal(v.end(), true);
    assert.equal(v.feed(hex('f0')), true);
    v.reset();
    assert.equal(v.feed(hex('80')), false, 'after reset a continuation byte is unexpected');
  });

  test('empty pieces change nothing', () => {
    const v = new Utf8Validator();
    assert.equal(v.feed(new Uint8Array(0)), true);
    assert.equal(v.feed(hex('e2')), true);
    assert.equal(v.feed(new Uint8Array(0)), true);
    assert.equal(v.feed(hex('82ac')), true);
    assert.equal(v.end(), true);
  });

  test('isValidUtf8 on whole buffers', () => {
    assert.equal(isValidUtf8(Buffer.from('κόσμε')), true);
    assert.equal(isValidUtf8(hex('eda080')), false);
    assert.equal(isValidUtf8(new Uint8Array(0)), true);
  });
});
