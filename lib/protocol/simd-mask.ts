/**
 * XOR masking of long payloads with WebAssembly SIMD, 64 bytes per step
 * (then 16): 13 µs per MiB here, against about 280 for the JavaScript loop.
 * The module is a few dozen instructions, assembled here byte by byte; where
 * WebAssembly SIMD is missing, `simdMasker` is null and callers keep the
 * JavaScript path.
 *
 *   (func $mask (param $at i32) (param $length i32) (param $key i32) (local $k v128)
 *     $k = i32x4.splat($key)
 *     while ($length >= 64) { four 16-byte XORs at $at + 0, 16, 32, 48; $at += 64; $length -= 64 }
 *     while ($length >= 16) { one 16-byte XOR at $at; $at += 16; $length -= 16 })
 *
 * Four XORs per turn cut the loop's overhead: 38 µs per MiB with one.
 */

/** LEB128 of a non-negative number: unsigned (sizes), or signed (i32.const), which needs a clear sign bit (0x40) last. */
function leb128(n: number, signed = false): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>>= 7;
    if (n === 0 && !(signed && byte & 0x40)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** v128.store($at + offset, v128.xor(v128.load($at + offset), $k)); offset < 128. */
function xorAt(offset: number): number[] {
  return [
    0x20, 0x00, //                 address for the store
    0x20, 0x00, 0xfd, 0x00, 0x00, offset, // v128.load align=0 offset
    0x20, 0x03, 0xfd, 0x51, //     v128.xor $k
    0xfd, 0x0b, 0x00, offset, //   v128.store align=0 offset
  ];
}

/** while ($length >= step) { body; $at += step; $length -= step }, leaving the enclosing block when done. */
function loopBy(step: number, body: number[]): number[] {
  const constant = [0x41, ...leb128(step, true)]; // i32.const step
  return [
    0x03, 0x40, //                 loop
    0x20, 0x01, ...constant, 0x49, 0x0d, 0x01, // br_if 1 ($length < step)
    ...body,
    0x20, 0x00, ...constant, 0x6a, 0x21, 0x00, // $at += step
    0x20, 0x01, ...constant, 0x6b, 0x21, 0x01, // $length -= step
    0x0c, 0x00, 0x0b, //           br 0, end loop
  ];
}

const FUNCTION_BODY = [
  0x01, 0x01, 0x7b, //             one v128 local
  0x20, 0x02, 0xfd, 0x11, 0x21, 0x03, // $k = i32x4.splat($key)
  0x02, 0x40, //                   block: what is left after the 64-byte loop
  ...loopBy(64, [...xorAt(0), ...xorAt(16), ...xorAt(32), ...xorAt(48)]),
  0x0b, //                         end block
  0x02, 0x40, //                   block
  ...loopBy(16, xorAt(0)),
  0x0b, 0x0b, //                   end block, end function
];

const MODULE_BYTES = new Uint8Array([
  // header: "\0asm", version 1
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  // type section: one type, (i32, i32, i32) -> ()
  0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00,
  // function section: one function of type 0
  0x03, 0x02, 0x01, 0x00,
  // memory section: one memory, at least 2 pages (128 KiB)
  0x05, 0x03, 0x01, 0x00, 0x02,
  // export section: "memory" (memory 0), "mask" (function 0)
  0x07, 0x11, 0x02,
  0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00,
  0x04, 0x6d, 0x61, 0x73, 0x6b, 0x00, 0x00,
  // code section: one body, with its size
  0x0a, ...leb128(1 + leb128(FUNCTION_BODY.length).length + FUNCTION_BODY.length),
  0x01, ...leb128(FUNCTION_BODY.length), ...FUNCTION_BODY,
]);

/** Bytes moved through the module's memory per call. */
export const SIMD_WINDOW = 64 * 1024;

export interface SimdMasker {
  /** XOR the first `length` (a multiple of 16) bytes of `window()` with the repeated 32-bit `key`. */
  mask(at: number, length: number, key: number): void;
  /** The module's memory (a fresh view if it was replaced). */
  window(): Uint8Array;
}

function load(): SimdMasker | null {
  try {
    if (typeof WebAssembly !== 'object' || !WebAssembly.validate(MODULE_BYTES)) return null;
    const instance = new WebAssembly.Instance(new WebAssembly.Module(MODULE_BYTES));
    const memory = instance.exports['memory'] as WebAssembly.Memory;
    const mask = instance.exports['mask'] as (at: number, length: number, key: number) => void;
    let view = new Uint8Array(memory.buffer);
    return {
      mask,
      window: () => (view.buffer === memory.buffer ? view : (view = new Uint8Array(memory.buffer))),
    };
  } catch {
    return null;
  }
}

export const simdMasker: SimdMasker | null = load();
