/**
 * XOR `data` in place with the 4-byte `mask`, starting at byte `maskOffset`
 * (0–3) of the mask, so that a frame's payload can be unmasked piece by piece
 * as it arrives. Works on 32-bit words where the data is long enough.
 */
export function applyMask(data: Uint8Array, mask: Uint8Array, maskOffset = 0): void {
  const length = data.length;
  let i = 0;
  // Bytes up to the first 4-byte-aligned address, so the word view is legal.
  const misalignment = (4 - ((data.byteOffset + i) & 3)) & 3;
  const head = length < 16 ? length : misalignment;
  for (; i < head; i++) data[i]! ^= mask[(maskOffset + i) & 3]!;
  if (i === length) return;

  const rotated = new Uint8Array(4);
  for (let k = 0; k < 4; k++) rotated[k] = mask[(maskOffset + i + k) & 3]!;
  const maskWord = new Uint32Array(rotated.buffer)[0]!;
  const wordCount = (length - i) >>> 2;
  const words = new Uint32Array(data.buffer, data.byteOffset + i, wordCount);
  for (let w = 0; w < wordCount; w++) words[w]! ^= maskWord;
  i += wordCount * 4;
  for (; i < length; i++) data[i]! ^= mask[(maskOffset + i) & 3]!;
}
