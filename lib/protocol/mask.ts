import { SIMD_WINDOW, simdMasker } from './simd-mask.js';

/** True on little-endian machines: decides how four mask bytes pack into one 32-bit word. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** From this length on, XOR in WebAssembly SIMD: copying in and out is paid back. */
const SIMD_THRESHOLD = 2048;

/** From this length on, XOR through a 32-bit view; below it, bytes are cheaper than the view. */
const WORD_THRESHOLD = 128;

/**
 * XOR `data` in place with the 4-byte `mask`, starting at byte `maskOffset`
 * (0–3) of the mask, so that a frame's payload can be unmasked piece by piece
 * as it arrives. Allocates nothing for short payloads; long ones go through a
 * 32-bit view, four bytes per operation.
 */
export function applyMask(data: Uint8Array, mask: ArrayLike<number>, maskOffset = 0): void {
  const length = data.length;
  const m0 = mask[maskOffset & 3]!;
  const m1 = mask[(maskOffset + 1) & 3]!;
  const m2 = mask[(maskOffset + 2) & 3]!;
  const m3 = mask[(maskOffset + 3) & 3]!;
  let i = 0;
  if (length >= SIMD_THRESHOLD && simdMasker !== null) {
    maskWithSimd(data, mask, maskOffset);
    return;
  }
  if (length >= WORD_THRESHOLD) {
    // Bytes up to the first 4-byte-aligned address, so the word view is legal.
    const head = (4 - (data.byteOffset & 3)) & 3;
    for (; i < head; i++) data[i]! ^= mask[(maskOffset + i) & 3]!;
    const r0 = mask[(maskOffset + i) & 3]!;
    const r1 = mask[(maskOffset + i + 1) & 3]!;
    const r2 = mask[(maskOffset + i + 2) & 3]!;
    const r3 = mask[(maskOffset + i + 3) & 3]!;
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
    for (; i < length; i++) data[i]! ^= mask[(maskOffset + i) & 3]!;
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
export function unmaskAscii(data: Uint8Array, start: number, end: number, mask: ArrayLike<number> | null): boolean {
  let seen = 0;
  if (mask === null) {
    for (let i = start; i < end; i++) seen |= data[i]!;
    return seen < 0x80;
  }
  const m0 = mask[0]!;
  const m1 = mask[1]!;
  const m2 = mask[2]!;
  const m3 = mask[3]!;
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

/** Mask through the SIMD module, a window at a time; the last (length mod 16) bytes in JavaScript. */
function maskWithSimd(data: Uint8Array, mask: ArrayLike<number>, maskOffset: number): void {
  const masker = simdMasker!;
  // Window starts are multiples of 16, so every window uses the key rotated by maskOffset.
  const b0 = mask[maskOffset & 3]!;
  const b1 = mask[(maskOffset + 1) & 3]!;
  const b2 = mask[(maskOffset + 2) & 3]!;
  const b3 = mask[(maskOffset + 3) & 3]!;
  // WebAssembly memory is little-endian whatever the machine.
  const key = b0 | (b1 << 8) | (b2 << 16) | (b3 << 24);
  const length = data.length;
  const whole = length & ~15;
  const memory = masker.window();
  for (let at = 0; at < whole; at += SIMD_WINDOW) {
    const size = Math.min(SIMD_WINDOW, whole - at);
    memory.set(data.subarray(at, at + size), 0);
    masker.mask(0, size, key);
    data.set(memory.subarray(0, size), at);
  }
  for (let i = whole; i < length; i++) data[i]! ^= mask[(maskOffset + i) & 3]!;
}
