/**
 * XOR masking of long payloads with WebAssembly SIMD, 16 bytes per step,
 * about four times the speed of the best plain JavaScript loop. The module is
 * a dozen instructions, assembled here byte by byte; where WebAssembly SIMD
 * is missing, `simdMasker` is null and callers keep the JavaScript path.
 *
 *   (func $mask (param $at i32) (param $length i32) (param $key i32) (local $k v128)
 *     $k = i32x4.splat($key)
 *     while ($length >= 16) { v128.store($at, v128.xor(v128.load($at), $k)); $at += 16; $length -= 16 })
 */
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
  // code section: one body
  0x0a, 0x39, 0x01, 0x37,
  0x01, 0x01, 0x7b, //           one v128 local
  0x20, 0x02, 0xfd, 0x11, 0x21, 0x03, // $k = i32x4.splat($key)
  0x02, 0x40, 0x03, 0x40, //     block, loop
  0x20, 0x01, 0x41, 0x10, 0x49, 0x0d, 0x01, // br_if 1 ($length < 16)
  0x20, 0x00, //                 address for the store
  0x20, 0x00, 0xfd, 0x00, 0x00, 0x00, // v128.load $at
  0x20, 0x03, 0xfd, 0x51, //     v128.xor $k
  0xfd, 0x0b, 0x00, 0x00, //     v128.store
  0x20, 0x00, 0x41, 0x10, 0x6a, 0x21, 0x00, // $at += 16
  0x20, 0x01, 0x41, 0x10, 0x6b, 0x21, 0x01, // $length -= 16
  0x0c, 0x00, 0x0b, 0x0b, 0x0b, // br 0, end loop, end block, end function
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
