/** RFC 6455 §5.3: the XOR mask, against a naive byte-by-byte reference. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyMask } from '../../lib/protocol/index.js';
import { simdMasker } from '../../lib/protocol/simd-mask.js';
import { Rng, binary, openServer } from './helpers.js';

function naive(data: Uint8Array, mask: Uint8Array, offset: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ mask[(offset + i) % 4]!;
  return out;
}

describe('applyMask', () => {
  const rng = new Rng(0x5eed);
  // 2047/2048/2049: the WebAssembly SIMD path starts at 2048; 65536 ± 17 and 200003 cross its 64 KiB windows.
  const lengths = [...Array.from({ length: 70 }, (_, i) => i), 127, 128, 255, 256, 1000, 2047, 2048, 2049, 4093, 4096, 4099, 65519, 65537, 65553, 200003];

  test('equals a naive XOR for every length, mask offset 0–3 and byteOffset 0–7 (unaligned views)', () => {
    let checked = 0;
    for (const length of lengths) {
      for (let maskOffset = 0; maskOffset < 4; maskOffset++) {
        for (let byteOffset = 0; byteOffset < 8; byteOffset++) {
          const mask = rng.bytes(4);
          const backing = rng.bytes(byteOffset + length + 5);
          const before = Buffer.from(backing);
          const view = new Uint8Array(backing.buffer, backing.byteOffset + byteOffset, length);
          const expected = naive(view, mask, maskOffset);
          applyMask(view, mask, maskOffset);
          assert.deepEqual(view, expected, `length ${length} offset ${maskOffset} byteOffset ${byteOffset}`);
          // Bytes around the view are untouched.
          assert.ok(backing.subarray(0, byteOffset).equals(before.subarray(0, byteOffset)));
          assert.ok(backing.subarray(byteOffset + length).equals(before.subarray(byteOffset + length)));
          checked++;
        }
      }
    }
    assert.equal(checked, lengths.length * 32);
  });

  test('the default mask offset is 0', () => {
    const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
    const mask = new Uint8Array([0xa0, 0xb0, 0xc0, 0xd0]);
    const expected = naive(data, mask, 0);
    applyMask(data, mask);
    assert.deepEqual(data, expected);
  });

  test('masking twice restores the data', () => {
    for (const length of [0, 3, 16, 17, 1001]) {
      const data = rng.bytes(length);
      const copy = Buffer.from(data);
      const mask = rng.bytes(4);
      applyMask(data, mask, 2);
      if (length > 0) assert.ok(!data.equals(copy) || mask.every((b) => b === 0));
      applyMask(data, mask, 2);
      assert.ok(data.equals(copy));
    }
  });

  test('masking piece by piece with a running offset equals masking the whole', () => {
    for (let round = 0; round < 200; round++) {
      const length = rng.range(0, 300);
      const data = rng.bytes(length);
      const mask = rng.bytes(4);
      const whole = Buffer.from(data);
      applyMask(whole, mask, 0);
      const pieces = Buffer.from(data);
      let at = 0;
      let offset = 0;
      while (at < length) {
        const size = Math.min(length - at, rng.range(1, 40));
        applyMask(pieces.subarray(at, at + size), mask, offset);
        offset = (offset + size) & 3;
        at += size;
      }
      assert.ok(pieces.equals(whole), `round ${round}`);
    }
  });

  test('the server unmasks payloads split at every offset across chunks', () => {
    const payload = rng.bytes(53);
    const f = binary(payload, { mask: [0x11, 0x22, 0x33, 0x44] });
    for (let a = 1; a < f.length; a++) {
      for (const b of [a + 1, a + 5, f.length]) {
        if (b > f.length) continue;
        const wire = openServer();
        const step = wire.feed(f.subarray(0, a), f.subarray(a, b), f.subarray(b));
        assert.equal(step.events.length, 1, `split ${a}/${b}`);
        assert.ok((step.events[0] as { data: Buffer }).data.equals(payload), `split ${a}/${b}`);
      }
    }
  });
});

test('the WebAssembly SIMD masker loads on Node 20 (else long payloads fall back to the slower JS loop)', () => {
  assert.notEqual(simdMasker, null);
});

test('the SIMD module XORs exactly the first length bytes from at, through both of its loops (64 and 16 bytes a turn)', () => {
  const masker = simdMasker!;
  const key = [0x12, 0x34, 0x56, 0x78];
  const packed = key[0]! | (key[1]! << 8) | (key[2]! << 16) | (key[3]! << 24);
  const rng = new Rng(0x51d);
  let checked = 0;
  // Lengths up to 5 turns of 64 plus every remainder of 16; `at` aligned and not.
  for (let length = 0; length <= 5 * 64 + 48; length += 16) {
    for (const at of [0, 16, 40, 1000]) {
      const window = masker.window();
      const original = rng.bytes(at + length + 64);
      window.set(original, 0);
      masker.mask(at, length, packed);
      for (let i = 0; i < original.length; i++) {
        const expected = i >= at && i < at + length ? original[i]! ^ key[(i - at) % 4]! : original[i]!;
        if (window[i] !== expected) assert.fail(`length ${length} at ${at}: byte ${i} is ${window[i]}, expected ${expected}`);
      }
      checked++;
    }
  }
  assert.equal(checked, 24 * 4);
});
