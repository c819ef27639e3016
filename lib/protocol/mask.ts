import { SIMD_WINDOW, simdMasker } from './simd-mask.js';

/** True on little-endian machines: decides how four mask bytes pack into one 32-bit word. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** From this length on, XOR in WebAssembly SIMD: copying in and out is paid back. */
const SIMD_THRESHOLD = 2048;

/** From this length on, XOR through a 32-bit view; below it, bytes are cheaper than the view. */
const WORD_THRESHOLD = 128;

/**
 * The four bytes of a masking key in one 32-bit integer, the first byte in
 * the low bits: a connection keeps one number instead of an array.
 */
export function packMask(mask: ArrayLike<number>): number {
  return mask[0]! | (mask[1]! << 8) | (mask[2]! << 16) | (mask[3]! << 24);
}

/** Byte `index` (taken modulo 4) of a packed key. */
function keyByte(key: number, index: number): number {
  return (key >>> ((index & 3) << 3)) & 0xff;
}

/**
 * XOR `data` in place with the 4-byte `mask`, starting at byte `maskOffset`
 * (0–3) of the mask, so that a frame's payload can be unmasked piece by piece
 * as it arrives.
 */
export function applyMask(data: Uint8Array, mask: ArrayLike<number>, maskOffset = 0): void {
  maskWithKey(data, packMask(mask), maskOffset);
}

/**
 * applyMask with the key packed by packMask(). Allocates nothing for short
 * payloads; longer ones go through a 32-bit view, four bytes per operation,
 * and long ones through WebAssembly SIMD.
 */
export function maskWithKey(data: Uint8Array, key: number, maskOffset: number): void {
  const length = data.length;
  const m0 = keyByte(key, maskOffset);
  const m1 = keyByte(key, maskOffset + 1);
  const m2 = keyByte(key, maskOffset + 2);
  const m3 = keyByte(key, maskOffset + 3);
  let i = 0;
  if (length >= SIMD_THRESHOLD && simdMasker !== null) {
    maskWithSimd(data, data, 0, m0, m1, m2, m3);
    return;
  }
  if (length >= WORD_THRESHOLD) {
    // Bytes up to the first 4-byte-aligned address, so the word view is legal.
    const head = (4 - (data.byteOffset & 3)) & 3;
    for (; i < head; i++) data[i]! ^= keyByte(key, maskOffset + i);
    const r0 = keyByte(key, maskOffset + i);
    const r1 = keyByte(key, maskOffset + i + 1);
    const r2 = keyByte(key, maskOffset + i + 2);
    const r3 = keyByte(key, maskOffset + i + 3);
    // Signed 32-bit words: the XOR stays in small-integer arithmetic (an unsigned word above
    // 2^31 would turn every element into a floating-point number on the way).
    const word = LITTLE_ENDIAN ? r0 | (r1 << 8) | (r2 << 16) | (r3 << 24) : (r0 << 24) | (r1 << 16) | (r2 << 8) | r3;
    const wordCount = (length - i) >>> 2;
    const words = new Int32Array(data.buffer, data.byteOffset + i, wordCount);
    const unrolled = wordCount & ~3;
    let w = 0;
    for (; w < unrolled; w += 4) {
      words[w]! ^= word;
      words[w + 1]! ^= word;
      words[w + 2]! ^= word;
      words[w + 3]! ^= word;
    }
    for (; w < wordCount; w++) words[w]! ^= word;
    i += wordCount << 2;
    for (; i < length; i++) data[i]! ^= keyByte(key, maskOffset + i);
    return;
  }
  const whole = length & ~3;
  for (; i < whole; i += 4) {
    data[i]! ^= m0;
    data[i + 1]! ^= m1;
    data[i + 2]! ^= m2;
    data[i + 3]! ^= m3;
  }
  if (i < length) data[i++]! ^= m0;
  if (i < length) data[i++]! ^= m1;
  if (i < length) data[i]! ^= m2;
}

/**
 * Unmask `data[start…end)` in place (when `mask` is given) and tell whether
 * every byte is ASCII, in one pass: short text needs no further UTF-8 check.
 */
export function unmaskAscii(data: Uint8Array, start: number, end: number, key: number | null): boolean {
  let seen = 0;
  if (key === null) {
    for (let i = start; i < end; i++) seen |= data[i]!;
    return seen < 0x80;
  }
  const m0 = key & 0xff;
  const m1 = (key >>> 8) & 0xff;
  const m2 = (key >>> 16) & 0xff;
  const m3 = key >>> 24;
  let i = start;
  const whole = start + ((end - start) & ~3);
  for (; i < whole; i += 4) {
    seen |= data[i]! ^= m0;
    seen |= data[i + 1]! ^= m1;
    seen |= data[i + 2]! ^= m2;
    seen |= data[i + 3]! ^= m3;
  }
  if (i < end) seen |= data[i++]! ^= m0;
  if (i < end) seen |= data[i++]! ^= m1;
  if (i < end) seen |= data[i]! ^= m2;
  return seen < 0x80;
}

/**
 * Copy `source`, masked with the key packed by packMask() from byte
 * `maskOffset` on, into `target` at `targetOffset`; `source` is left as it
 * is. Long payloads make one trip through the SIMD module, so joining the
 * pieces of a message and unmasking them costs two copies, not three.
 */
export function maskInto(source: Uint8Array, target: Uint8Array, targetOffset: number, key: number, maskOffset: number): void {
  if (source.length >= SIMD_THRESHOLD && simdMasker !== null) {
    const m0 = keyByte(key, maskOffset);
    const m1 = keyByte(key, maskOffset + 1);
    const m2 = keyByte(key, maskOffset + 2);
    const m3 = keyByte(key, maskOffset + 3);
    maskWithSimd(source, target, targetOffset, m0, m1, m2, m3);
    return;
  }
  target.set(source, targetOffset);
  maskWithKey(target.subarray(targetOffset, targetOffset + source.length), key, maskOffset);
}

/**
 * XOR `source` into `target` at `targetOffset` through the SIMD module, a
 * window at a time (in place when they are the same bytes); the last
 * (length mod 16) bytes in JavaScript. b0…b3: the key rotated to the mask
 * offset; window starts are multiples of 16, so every window uses it.
 */
function maskWithSimd(source: Uint8Array, target: Uint8Array, targetOffset: number, b0: number, b1: number, b2: number, b3: number): void {
  const masker = simdMasker!;
  // WebAssembly memory is little-endian whatever the machine.
  const key = b0 | (b1 << 8) | (b2 << 16) | (b3 << 24);
  const length = source.length;
  const whole = length & ~15;
  const memory = masker.window();
  for (let at = 0; at < whole; at += SIMD_WINDOW) {
    const size = Math.min(SIMD_WINDOW, whole - at);
    memory.set(source.subarray(at, at + size), 0);
    masker.mask(0, size, key);
    target.set(memory.subarray(0, size), targetOffset + at);
  }
  for (let i = whole; i < length; i++) {
    const k = i & 3;
    target[targetOffset + i] = source[i]! ^ (k === 0 ? b0 : k === 1 ? b1 : k === 2 ? b2 : b3);
  }
}
