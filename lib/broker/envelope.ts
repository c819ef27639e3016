/**
 * The bytes a publish travels in between processes over a byte channel
 * (Redis): who published it, text or binary, and the payload unchanged.
 *
 *   byte 0      0x52 ('R'), byte 1: version 1
 *   byte 2      1 = text (UTF-8), 2 = binary
 *   bytes 3–10  the publishing broker's origin (8 random bytes)
 *   bytes 11…   the payload
 *
 * The origin lets a process drop its own publish when the channel brings it
 * back (Redis delivers to every subscriber, the publisher's own included).
 */
import { randomBytes } from 'node:crypto';
import { isValidUtf8 } from '../protocol/utf8.js';
import type { TopicData } from './broker.js';

const MAGIC = 0x52;
const VERSION = 1;
const TEXT = 1;
const BINARY = 2;
export const ORIGIN_LENGTH = 8;
const HEADER = 3 + ORIGIN_LENGTH;

/** A new broker's origin tag. */
export function newOrigin(): Buffer {
  return randomBytes(ORIGIN_LENGTH);
}

export function encodeEnvelope(origin: Uint8Array, data: TopicData): Buffer {
  const text = typeof data === 'string';
  const length = text ? Buffer.byteLength(data) : data.byteLength;
  const out = Buffer.allocUnsafe(HEADER + length);
  out[0] = MAGIC;
  out[1] = VERSION;
  out[2] = text ? TEXT : BINARY;
  out.set(origin, 3);
  if (text) out.write(data, HEADER);
  else out.set(data, HEADER);
  return out;
}

/** A decoded envelope, or why it is not one. */
export type Opened = { data: TopicData; own: boolean } | { malformed: string };

/** Read `bytes`; `own` is true when `origin` published it. */
export function openEnvelope(bytes: Uint8Array, origin: Uint8Array): Opened {
  if (bytes.byteLength < HEADER || bytes[0] !== MAGIC) return { malformed: 'not a resound envelope' };
  if (bytes[1] !== VERSION) return { malformed: `envelope version ${bytes[1]}` };
  const kind = bytes[2];
  if (kind !== TEXT && kind !== BINARY) return { malformed: `unknown kind ${kind}` };
  const own = Buffer.compare(bytes.subarray(3, HEADER), origin) === 0;
  // A view, not a copy: the channel hands each message over in a buffer of its own.
  const payload = Buffer.from(bytes.buffer, bytes.byteOffset + HEADER, bytes.byteLength - HEADER);
  if (kind === BINARY) return { data: payload, own };
  if (!isValidUtf8(payload)) return { malformed: 'text that is not UTF-8' };
  return { data: payload.toString('utf8'), own };
}
