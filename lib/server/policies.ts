/**
 * Built-in handshake policies (see lib/server/guard.ts for `Policy`), each
 * optional and composable: list them in the `policies` option, in order.
 *
 * - `allowOrigins`: the browser's Origin header must be one of a list
 *   (exact origins, `https://*.example.com` wildcards, or `*`).
 * - `allowAddresses` / `blockAddresses`: IPv4 and IPv6 addresses and CIDR
 *   ranges the client must, or must not, come from.
 * - `trustProxies` / `clientAddressOf`: the client's address behind trusted
 *   reverse proxies, from X-Forwarded-For.
 *
 * Everything given to a factory is parsed once, when the policy is made; a
 * bad entry throws a TypeError naming it. Per handshake, addresses are parsed
 * by hand into 32-bit words and compared by prefix (no regular expressions,
 * no BigInt, no allocation but the returned strings). docs/policies.md has
 * the rules and examples.
 */
import { reject, type Policy, type UpgradeRequest } from './guard.js';

// ---------------------------------------------------------------------------
// Origins
// ---------------------------------------------------------------------------

export interface OriginPolicyOptions {
  /**
   * Let requests without an Origin header through (non-browser clients
   * send none). Default false: they are refused with 403.
   */
  readonly allowMissing?: boolean;
}

/** An origin taken apart: lower-case scheme with its colon, lower-case host (punycode, `[v6]`), port ('' when the scheme's default). */
interface OriginParts {
  readonly scheme: string;
  readonly host: string;
  readonly port: string;
}

/** A `scheme://*.suffix[:port]` entry. */
interface WildcardOrigin {
  readonly scheme: string;
  /** With its leading dot: `.example.com`. */
  readonly suffix: string;
  readonly port: string;
}

/** The longest Origin header looked at; longer ones are refused unparsed. */
const MAX_ORIGIN_LENGTH = 2048;

/**
 * A policy admitting only the listed origins (the Origin header, RFC 6454).
 *
 * Entries: an exact origin `scheme://host[:port]` (scheme and host compare
 * case-insensitively, the scheme's default port is the same as none:
 * `https://x` is `https://x:443`; one trailing `/` is tolerated), a wildcard
 * `scheme://*.example.com[:port]` (any host with one or more labels before
 * `.example.com`, not `example.com` itself; same scheme and port), or `*`
 * (any Origin header at all, `null` and malformed ones included).
 *
 * A request without an Origin header is refused unless `allowMissing`.
 * Refusals are 403 with a body naming the origin.
 */
export function allowOrigins(origins: readonly string[], options: OriginPolicyOptions = {}): Policy {
  if (!Array.isArray(origins)) throw new TypeError('allowOrigins: expected an array of origins');
  const allowMissing = options.allowMissing === true;
  let any = false;
  const exact = new Set<string>();
  const wildcards: WildcardOrigin[] = [];
  for (const entry of origins as readonly unknown[]) {
    if (typeof entry !== 'string') throw new TypeError(`allowOrigins: entries must be strings, not ${typeof entry}`);
    const text = entry.trim();
    if (text === '*') {
      any = true;
      continue;
    }
    if (text.toLowerCase() === 'null') {
      throw new TypeError('allowOrigins: "null" is not accepted as an entry (any sandboxed or file: document sends it); use "*" to accept any origin');
    }
    const sep = text.indexOf('://');
    if (sep > 0 && text.startsWith('*', sep + 3)) {
      wildcards.push(wildcardOrigin(text, sep));
      continue;
    }
    // A '*' anywhere else is no wildcard we know.
    const parts = text.includes('*') ? null : originParts(text, true);
    if (parts === null) throw new TypeError(`allowOrigins: ${JSON.stringify(entry)} is not an origin (scheme://host[:port], scheme://*.domain or *)`);
    exact.add(originKey(parts));
  }

  return (upgrade: UpgradeRequest) => {
    const origin = upgrade.request.headers['origin'];
    if (origin === undefined) return allowMissing ? undefined : reject(403, 'an Origin header is required');
    if (any) return undefined;
    // Browsers send the serialized form, which is how the keys are kept.
    if (exact.has(origin)) return undefined;
    const parts = originParts(origin, false);
    if (parts !== null) {
      if (exact.has(originKey(parts))) return undefined;
      for (const wildcard of wildcards) if (matchesWildcard(parts, wildcard)) return undefined;
    }
    return reject(403, `origin ${shown(origin)} is not allowed`);
  };
}

function wildcardOrigin(text: string, sep: number): WildcardOrigin {
  const bad = (): TypeError =>
    new TypeError(`allowOrigins: ${JSON.stringify(text)} is not a wildcard origin (scheme://*.domain[:port], the * alone as the first label)`);
  if (text.charCodeAt(sep + 4) !== 0x2e /* . */ || text.indexOf('*', sep + 4) >= 0) throw bad();
  // Parse with a placeholder label, then keep what follows it.
  const parts = originParts(`${text.slice(0, sep + 3)}w${text.slice(sep + 4)}`, true);
  if (parts === null || !parts.host.startsWith('w.')) throw bad();
  const suffix = parts.host.slice(1);
  if (!labelsAreNonEmpty(suffix.slice(1))) throw bad();
  return { scheme: parts.scheme, suffix, port: parts.port };
}

function matchesWildcard(parts: OriginParts, wildcard: WildcardOrigin): boolean {
  const { host } = parts;
  return (
    parts.scheme === wildcard.scheme &&
    parts.port === wildcard.port &&
    host.endsWith(wildcard.suffix) &&
    labelsAreNonEmpty(host.slice(0, host.length - wildcard.suffix.length))
  );
}

/** `a.b.c` yes; `''`, `.a`, `a.`, `a..b` no. */
function labelsAreNonEmpty(text: string): boolean {
  return text.length > 0 && !text.startsWith('.') && !text.endsWith('.') && !text.includes('..');
}

function originKey(parts: OriginParts): string {
  return parts.port === '' ? `${parts.scheme}//${parts.host}` : `${parts.scheme}//${parts.host}:${parts.port}`;
}

/**
 * `scheme://host[:port]` taken apart, or null. WHATWG URL parsing does the
 * host (lower case, punycode, default ports dropped for http(s) and ws(s));
 * no userinfo, path, query or fragment may come with it. `entry` allows
 * non-ASCII hosts (IDN); a header must be ASCII, as browsers send it.
 */
function originParts(text: string, entry: boolean): OriginParts | null {
  if (text.length === 0 || text.length > MAX_ORIGIN_LENGTH) return null;
  const sep = text.indexOf('://');
  if (sep <= 0) return null;
  let end = text.length;
  if (end > sep + 3 && text.charCodeAt(end - 1) === 0x2f /* / */) end--;
  if (end === sep + 3) return null;
  for (let i = sep + 3; i < end; i++) {
    const c = text.charCodeAt(i);
    // '/', '?', '#', '@', '\', whitespace and controls have no place in an origin's authority.
    if (c <= 0x20 || c === 0x7f || c === 0x2f || c === 0x3f || c === 0x23 || c === 0x40 || c === 0x5c) return null;
    if (c > 0x7f && !entry) return null;
  }
  let url: URL;
  try {
    url = new URL(text.slice(0, end));
  } catch {
    return null;
  }
  if (url.hostname === '') return null;
  return { scheme: url.protocol, host: url.hostname.toLowerCase(), port: url.port };
}

/** A header value as it may appear in a one-line body: printable ASCII, at most 200 characters. */
function shown(text: string): string {
  let out = '';
  const length = Math.min(text.length, 200);
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    out += c >= 0x20 && c < 0x7f ? text[i] : '?';
  }
  return text.length > length ? `${out}…` : out;
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

export interface AddressPolicyOptions {
  /**
   * Which address is checked: 'client' (default), the client as trusted
   * proxies forwarded it (`upgrade.clientAddress`), or 'remote', the TCP
   * peer itself (`upgrade.remoteAddress`).
   */
  readonly address?: 'client' | 'remote';
}

/**
 * A policy admitting only clients whose address is in one of the ranges;
 * others (and addresses that cannot be read, such as '') get 403.
 *
 * Entries: an IPv4 or IPv6 address (`192.168.1.7`, `::1`) or CIDR range
 * (`10.0.0.0/8`, `2001:db8::/32`); host bits below the prefix are ignored
 * (`10.1.2.3/8` is `10.0.0.0/8`). IPv4 entries also match IPv4-mapped IPv6
 * addresses (`::ffff:10.1.2.3`), as Node reports IPv4 peers on a dual-stack
 * socket; IPv6 ranges shorter than /96 never match IPv4 clients (`::/0` is
 * every IPv6 address; add `0.0.0.0/0` for every IPv4 one).
 */
export function allowAddresses(cidrs: readonly string[], options: AddressPolicyOptions = {}): Policy {
  const list = new AddressList(cidrs, 'allowAddresses');
  const remote = addressChoice(options, 'allowAddresses');
  return (upgrade: UpgradeRequest) => {
    const address = remote ? upgrade.remoteAddress : upgrade.clientAddress;
    return list.has(address) ? undefined : reject(403, `address ${shown(address)} is not allowed`);
  };
}

/**
 * A policy refusing, with 403, clients whose address is in one of the
 * ranges, and addresses that cannot be read (such as ''). Entries and
 * matching as in `allowAddresses`.
 */
export function blockAddresses(cidrs: readonly string[], options: AddressPolicyOptions = {}): Policy {
  const list = new AddressList(cidrs, 'blockAddresses');
  const remote = addressChoice(options, 'blockAddresses');
  return (upgrade: UpgradeRequest) => {
    const address = remote ? upgrade.remoteAddress : upgrade.clientAddress;
    if (list.readable(address) && !list.hasRead()) return undefined;
    return reject(403, `address ${shown(address)} is not allowed`);
  };
}

/**
 * The ranges compiled into a test: true when `address` (text as Node
 * reports it, or as written in X-Forwarded-For; an IPv6 zone such as
 * `%eth0` is ignored) lies in one of them. False for anything that is not
 * an address. Entries as in `allowAddresses`.
 */
export function addressMatcher(cidrs: readonly string[]): (address: string) => boolean {
  const list = new AddressList(cidrs, 'addressMatcher');
  return (address: string) => list.has(address);
}

function addressChoice(options: AddressPolicyOptions, who: string): boolean {
  const choice = options.address ?? 'client';
  if (choice !== 'client' && choice !== 'remote') throw new TypeError(`${who}: address must be 'client' or 'remote', not ${JSON.stringify(choice)}`);
  return choice === 'remote';
}

/**
 * Addresses are read as 128 bits in four 32-bit words, most significant
 * first; IPv4 as its IPv4-mapped IPv6 form `::ffff:a.b.c.d`, so word 3 alone
 * holds it. Reused by every read: a read and its use are synchronous.
 */
const WORDS = new Uint32Array(4);
const GROUPS = new Uint16Array(8);

const NOT_AN_ADDRESS = 0;
const IPV4 = 4;
const IPV6 = 6;
type Family = typeof NOT_AN_ADDRESS | typeof IPV4 | typeof IPV6;

/** `::ffff:255.255.255.255%` and a zone of up to 64 characters, say. */
const MAX_ADDRESS_LENGTH = 45 + 1 + 64;

/**
 * Read the address in text[start, end) into WORDS. IPV4 for a dotted quad
 * or an IPv4-mapped IPv6 address, IPV6 for any other IPv6 address,
 * NOT_AN_ADDRESS otherwise. With `zone`, an IPv6 zone (`%eth0`) is allowed
 * and ignored.
 */
function readAddress(text: string, start: number, end: number, zone: boolean): Family {
  if (end <= start || end - start > MAX_ADDRESS_LENGTH) return NOT_AN_ADDRESS;
  let colon = false;
  let percent = -1;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3a /* : */) colon = true;
    else if (c === 0x25 /* % */) {
      percent = i;
      break;
    }
  }
  if (percent >= 0) {
    if (!zone || !colon || percent === end - 1) return NOT_AN_ADDRESS;
    for (let i = percent + 1; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f || c === 0x25) return NOT_AN_ADDRESS;
    }
    end = percent;
  }
  if (!colon) {
    const v4 = readIPv4(text, start, end);
    if (v4 < 0) return NOT_AN_ADDRESS;
    WORDS[0] = 0;
    WORDS[1] = 0;
    WORDS[2] = 0xffff;
    WORDS[3] = v4;
    return IPV4;
  }
  if (!readIPv6(text, start, end)) return NOT_AN_ADDRESS;
  return WORDS[0] === 0 && WORDS[1] === 0 && WORDS[2] === 0xffff ? IPV4 : IPV6;
}

/** A dotted quad as an unsigned 32-bit number, or -1: four decimal parts of 0–255, no leading zeros (`010` could mean octal). */
function readIPv4(text: string, start: number, end: number): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = start; i <= end; i++) {
    const c = i === end ? 0x2e : text.charCodeAt(i);
    if (c === 0x2e /* . */) {
      if (digits === 0 || parts === 4) return -1;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 0x30);
      if (part > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  return parts === 4 ? value : -1;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * RFC 4291 §2.2 text into WORDS: eight groups of 1–4 hex digits, or fewer
 * with one `::` standing for one or more zero groups, the last 32 bits
 * optionally as a dotted quad.
 */
function readIPv6(text: string, start: number, end: number): boolean {
  let count = 0;
  let gap = -1;
  let i = start;
  if (text.charCodeAt(i) === 0x3a) {
    if (text.charCodeAt(i + 1) !== 0x3a) return false;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    let tokenEnd = i;
    let dotted = false;
    while (tokenEnd < end) {
      const c = text.charCodeAt(tokenEnd);
      if (c === 0x3a) break;
      if (c === 0x2e) dotted = true;
      tokenEnd++;
    }
    if (dotted) {
      // The embedded IPv4 address: last, and taking two groups.
      if (tokenEnd !== end || count > 6) return false;
      const v4 = readIPv4(text, i, end);
      if (v4 < 0) return false;
      GROUPS[count++] = v4 >>> 16;
      GROUPS[count++] = v4 & 0xffff;
      break;
    }
    const length = tokenEnd - i;
    if (length === 0 || length > 4 || count === 8) return false;
    let group = 0;
    for (let j = i; j < tokenEnd; j++) {
      const digit = hexValue(text.charCodeAt(j));
      if (digit < 0) return false;
      group = group * 16 + digit;
    }
    GROUPS[count++] = group;
    i = tokenEnd;
    if (i === end) break;
    // At a ':'.
    if (text.charCodeAt(i + 1) === 0x3a) {
      if (gap >= 0) return false;
      gap = count;
      i += 2;
    } else {
      i += 1;
      if (i === end) return false;
    }
  }
  if (gap < 0 ? count !== 8 : count > 7) return false;
  if (gap >= 0) {
    // Move the groups after the gap to the end, zeros between.
    const after = count - gap;
    for (let k = 0; k < after; k++) GROUPS[7 - k] = GROUPS[count - 1 - k];
    for (let k = gap; k < 8 - after; k++) GROUPS[k] = 0;
  }
  for (let w = 0; w < 4; w++) WORDS[w] = GROUPS[2 * w] * 0x10000 + GROUPS[2 * w + 1];
  return true;
}

/** The mask of the top `bits` bits of a 32-bit word (0–32). */
function topBits(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/**
 * A list of ranges, parsed once. IPv4 ranges (dotted, or written as
 * IPv4-mapped IPv6 with a prefix of /96 or more) are kept as a network and
 * a mask of one word and match only IPv4 addresses; the others as four
 * words of network and four of mask, matching only IPv6 addresses.
 */
class AddressList {
  private readonly v4: Uint32Array;
  private readonly v6: Uint32Array;
  /** What the last `readable` read: IPV4, IPV6 or NOT_AN_ADDRESS. */
  private family: Family = NOT_AN_ADDRESS;

  constructor(cidrs: readonly string[], who: string) {
    if (!Array.isArray(cidrs)) throw new TypeError(`${who}: expected an array of addresses and CIDR ranges`);
    const v4: number[] = [];
    const v6: number[] = [];
    for (const entry of cidrs as readonly unknown[]) {
      if (typeof entry !== 'string') throw new TypeError(`${who}: entries must be strings, not ${typeof entry}`);
      const bad = (why: string): TypeError => new TypeError(`${who}: ${JSON.stringify(entry)} is not an IP address or CIDR range (${why})`);
      const text = entry.trim();
      const slash = text.indexOf('/');
      const addressEnd = slash < 0 ? text.length : slash;
      const family = readAddress(text, 0, addressEnd, false);
      if (family === NOT_AN_ADDRESS) throw bad('unreadable address');
      const dotted = !text.slice(0, addressEnd).includes(':');
      const most = dotted ? 32 : 128;
      let prefix = most;
      if (slash >= 0) {
        prefix = readPrefix(text, slash + 1);
        if (prefix < 0) throw bad('the prefix length must be a decimal number');
        if (prefix > most) throw bad(`the prefix length is at most ${most}`);
      }
      const bits = dotted ? prefix + 96 : prefix;
      if (family === IPV4 && bits >= 96) {
        const mask = topBits(bits - 96);
        v4.push((WORDS[3] & mask) >>> 0, mask);
      } else {
        for (let w = 0; w < 4; w++) v6.push((WORDS[w] & topBits(bits - 32 * w)) >>> 0);
        for (let w = 0; w < 4; w++) v6.push(topBits(bits - 32 * w));
      }
    }
    this.v4 = Uint32Array.from(v4);
    this.v6 = Uint32Array.from(v6);
  }

  get empty(): boolean {
    return this.v4.length === 0 && this.v6.length === 0;
  }

  /** Whether `address` (whole, zone allowed) lies in a range. */
  has(address: string): boolean {
    return this.readable(address) && this.hasRead();
  }

  /** Read `address` into WORDS; false when it is not an address. */
  readable(address: string, start = 0, end = address.length): boolean {
    this.family = readAddress(address, start, end, true);
    return this.family !== NOT_AN_ADDRESS;
  }

  /** Whether the address `readable` just read lies in a range. */
  hasRead(): boolean {
    if (this.family === IPV4) {
      const address = WORDS[3];
      const list = this.v4;
      for (let i = 0; i < list.length; i += 2) if ((address & list[i + 1]) >>> 0 === list[i]) return true;
      return false;
    }
    if (this.family !== IPV6) return false;
    const w0 = WORDS[0];
    const w1 = WORDS[1];
    const w2 = WORDS[2];
    const w3 = WORDS[3];
    const list = this.v6;
    for (let i = 0; i < list.length; i += 8) {
      if (
        (w0 & list[i + 4]) >>> 0 === list[i] &&
        (w1 & list[i + 5]) >>> 0 === list[i + 1] &&
        (w2 & list[i + 6]) >>> 0 === list[i + 2] &&
        (w3 & list[i + 7]) >>> 0 === list[i + 3]
      ) {
        return true;
      }
    }
    return false;
  }
}

/** The decimal prefix length from `start` to the end, or -1: digits only, no leading zero but `0` itself. */
function readPrefix(text: string, start: number): number {
  const length = text.length - start;
  if (length < 1 || length > 3 || (length > 1 && text.charCodeAt(start) === 0x30)) return -1;
  let value = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    value = value * 10 + (c - 0x30);
  }
  return value;
}

// ---------------------------------------------------------------------------
// Trusted proxies
// ---------------------------------------------------------------------------

/** Where the address of the last X-Forwarded-For element read lies in the header. */
let elementStart = 0;
let elementEnd = 0;

/**
 * The client address behind trusted proxies, compiled once: returns
 * `(remoteAddress, forwardedFor) => clientAddress` for the server to call
 * per handshake. `trustedProxies` are addresses and CIDR ranges as in
 * `allowAddresses`.
 *
 * - The TCP peer is not a trusted proxy (or the list is empty): the client
 *   is the peer, and X-Forwarded-For is ignored.
 * - Otherwise X-Forwarded-For (`client, proxy1, proxy2`; repeated headers
 *   count as one list) is walked from the right, skipping trusted proxies;
 *   the first address that is not one is the client. When all are trusted,
 *   the leftmost is the client; an empty or absent header leaves the peer.
 * - An element that is not an address (empty, `unknown`, garbage, an
 *   obfuscated name) stops the walk: nothing left of it can be trusted, so
 *   the client is the last address read, the trusted proxy to its right
 *   (the peer when it is the rightmost element).
 *
 * Elements may be written `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
 * `[2001:db8::1]` or `[2001:db8::1]:5678`; the address comes back without
 * brackets or port, otherwise as written.
 */
export function trustProxies(trustedProxies: readonly string[]): (remoteAddress: string, forwardedFor: string | undefined) => string {
  const trusted = new AddressList(trustedProxies, 'trustProxies');
  if (trusted.empty) return (remoteAddress: string) => remoteAddress;
  return (remoteAddress: string, forwardedFor: string | undefined): string => {
    if (forwardedFor === undefined || !trusted.has(remoteAddress)) return remoteAddress;
    let client = remoteAddress;
    let end = forwardedFor.length;
    for (;;) {
      const comma = end === 0 ? -1 : forwardedFor.lastIndexOf(',', end - 1);
      if (!readElement(forwardedFor, comma + 1, end, trusted)) return client;
      client = forwardedFor.slice(elementStart, elementEnd);
      if (!trusted.hasRead()) return client;
      if (comma < 0) return client;
      end = comma;
    }
  };
}

/**
 * The client address of one handshake: `trustProxies(trustedProxies)`
 * applied once, parsing the list on every call. A server should keep the
 * function `trustProxies` returns instead.
 */
export function clientAddressOf(remoteAddress: string, forwardedFor: string | undefined, trustedProxies: readonly string[]): string {
  return trustProxies(trustedProxies)(remoteAddress, forwardedFor);
}

/**
 * Read the X-Forwarded-For element in header[start, end) (spaces and tabs
 * around it allowed) into WORDS through `list`, setting elementStart and
 * elementEnd to the address without brackets or port. False when it is not
 * an address.
 */
function readElement(header: string, start: number, end: number, list: AddressList): boolean {
  while (start < end && isSpace(header.charCodeAt(start))) start++;
  while (end > start && isSpace(header.charCodeAt(end - 1))) end--;
  if (start === end) return false;
  if (header.charCodeAt(start) === 0x5b /* [ */) {
    const close = header.indexOf(']', start);
    if (close < 0 || close >= end) return false;
    if (close + 1 < end && (header.charCodeAt(close + 1) !== 0x3a || !isPort(header, close + 2, end))) return false;
    start++;
    end = close;
    const colon = header.indexOf(':', start);
    if (colon < 0 || colon >= end) return false; // brackets hold IPv6 only
  } else {
    const colon = header.indexOf(':', start);
    if (colon >= 0 && colon < end) {
      const second = header.indexOf(':', colon + 1);
      if (second < 0 || second >= end) {
        // One colon: an IPv4 address and a port.
        if (!isPort(header, colon + 1, end)) return false;
        end = colon;
      }
    }
  }
  elementStart = start;
  elementEnd = end;
  return list.readable(header, start, end);
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** 1–5 decimal digits up to 65535 in text[start, end). */
function isPort(text: string, start: number, end: number): boolean {
  if (end <= start || end - start > 5) return false;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
    value = value * 10 + (c - 0x30);
  }
  return value <= 65535;
}
