import type { Socket } from 'node:net';

/**
 * The peer's address as a connection keeps it for its whole life (onClose
 * must still see it after a reset, when the socket can no longer tell):
 * an IPv4 address packed into one 32-bit integer, which costs no object
 * and no string per connection, anything else (IPv6) as its text.
 */
export type CompactAddress = number | string;

/** The native handle of a socket, as far as we use it. */
interface PeerHandle {
  getpeername?(out: { address?: string; port?: number }): number;
}

/** Filled by the handle on each call; read at once, so one object serves every connection. */
const scratch: { address?: string; port?: number } = {};

/**
 * The peer of a connected socket. Asked through the handle, as Node does
 * itself, because `socket.remoteAddress` keeps an object of its own on the
 * socket for good; the public getters are the fallback. '' and 0 when the
 * socket is not connected (any more).
 */
export function peerOf(socket: Socket): { address: string; port: number } {
  const handle = (socket as unknown as { _handle?: PeerHandle | null })._handle;
  scratch.address = undefined;
  scratch.port = undefined;
  if (typeof handle?.getpeername === 'function' && handle.getpeername(scratch) === 0) {
    return { address: scratch.address ?? '', port: scratch.port ?? 0 };
  }
  return { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
}

/** `text` packed when it is a dotted-quad IPv4 address that reads back the same, else `text` itself. */
export function compactAddress(text: string): CompactAddress {
  let packed = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return text;
      packed = packed * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39) {
      // A leading zero would not read back the same.
      if (digits > 0 && octet === 0) return text;
      octet = octet * 10 + (c - 0x30);
      if (octet > 255) return text;
      digits++;
    } else {
      return text;
    }
  }
  if (dots !== 3 || digits === 0) return text;
  // `| 0` keeps it a small integer (no heap number) on 64-bit V8.
  return (packed * 256 + octet) | 0;
}

/** The text of an address kept by compactAddress. */
export function addressText(address: CompactAddress): string {
  if (typeof address === 'string') return address;
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}
