/**
 * Incremental HTTP/1.1 message-head parser (RFC 9112 §2–§5), just enough for
 * the WebSocket opening handshake: it collects bytes up to the empty line,
 * bounded in size and header count, and splits the head into a start line and
 * header fields. Bodies are not its business.
 */

/** Header names in lower case; repeated fields joined by ", " (RFC 9110 §5.3). */
export type HeaderFields = Record<string, string>;

export interface HeadLimits {
  /** Most bytes a head may take, terminating empty line included. */
  maxHeadBytes: number;
  /** Most header fields a head may carry. */
  maxHeaders: number;
}

export const DEFAULT_HEAD_LIMITS: HeadLimits = { maxHeadBytes: 16 * 1024, maxHeaders: 100 };

/** A malformed or oversized head; `status` is the HTTP status to answer with. */
export class HeadParseError extends Error {
  override name = 'HeadParseError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface ParsedHead {
  startLine: string;
  /** The header lines, as received (CRLF-separated), for parsing again later. */
  fields: string;
  headers: HeaderFields;
  /** Names and values as received, alternating (like Node's `rawHeaders`). */
  rawHeaders: string[];
}

const CR = 0x0d;
const LF = 0x0a;
/** RFC 9110 §5.6.2 token characters. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values: visible characters, space, tab and obs-text; no other controls. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** A header name, method or subprotocol name: an RFC 9110 token. */
export function isToken(text: string): boolean {
  return TOKEN.test(text);
}

/** A header value that can go on the wire as is: no CR, LF, NUL or other controls, nothing beyond Latin-1. */
export function isFieldValue(text: string): boolean {
  return FIELD_VALUE.test(text);
}

export class HeadCollector {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  /** How much of CR LF CR LF the bytes seen so far end with. */
  private matched = 0;
  /** Lines ended so far (start line included), to refuse too many headers before the head ends. */
  private lines = 0;

  constructor(private readonly limits: HeadLimits = DEFAULT_HEAD_LIMITS) {}

  /**
   * Add bytes. Returns null while the head is incomplete; once complete, the
   * parsed head and whatever bytes followed it in `chunk`.
   */
  push(chunk: Buffer): { head: ParsedHead; rest: Buffer } | null {
    let matched = this.matched;
    let end = -1;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === CR) matched = matched === 2 ? 3 : 1;
      else if (byte === LF && (matched === 1 || matched === 3)) {
        matched++;
        if (matched === 2 && ++this.lines > this.limits.maxHeaders + 1) {
          throw new HeadParseError('too many header fields', 431);
        }
      } else matched = 0;
      if (matched === 4) {
        end = i + 1;
        break;
      }
    }
    this.matched = matched;
    const taken = end === -1 ? chunk.length : end;
    if (this.size + taken > this.limits.maxHeadBytes) {
      throw new HeadParseError('message head too large', 431);
    }
    if (end === -1) {
      this.chunks.push(chunk);
      this.size += taken;
      return null;
    }
    this.chunks.push(chunk.subarray(0, end));
    const bytes = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const head = parseHead(bytes.toString('latin1', 0, bytes.length - 4));
    return { head, rest: chunk.subarray(end) };
  }
}

function parseHead(text: string): ParsedHead {
  const firstBreak = text.indexOf('\r\n');
  const startLine = firstBreak === -1 ? text : text.slice(0, firstBreak);
  const fields = firstBreak === -1 ? '' : text.slice(firstBreak + 2);
  const rawHeaders = parseFieldLines(fields);
  return { startLine, fields, headers: foldHeaders(rawHeaders), rawHeaders };
}

/** The header lines of a head (CRLF-separated) as alternating names and values, checked (RFC 9112 §5). */
export function parseFieldLines(fields: string): string[] {
  const rawHeaders: string[] = [];
  if (fields === '') return rawHeaders;
  for (const line of fields.split('\r\n')) {
    const colon = line.indexOf(':');
    // §5.2: obsolete line folding (a line starting with whitespace) is refused.
    if (colon <= 0) throw new HeadParseError('malformed header line', 400);
    const name = line.slice(0, colon);
    // §5.1: no whitespace between the field name and the colon.
    if (!TOKEN.test(name)) throw new HeadParseError('invalid header name', 400);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) throw new HeadParseError(`invalid value for header ${name}`, 400);
    rawHeaders.push(name, value);
  }
  return rawHeaders;
}

/** Alternating names and values → lower-case names, repeats joined by ", " (RFC 9110 §5.3). */
export function foldHeaders(rawHeaders: readonly string[]): HeaderFields {
  const headers = Object.create(null) as HeaderFields;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const key = rawHeaders[i]!.toLowerCase();
    const previous = headers[key];
    headers[key] = previous === undefined ? rawHeaders[i + 1]! : `${previous}, ${rawHeaders[i + 1]}`;
  }
  return headers;
}

/** `METHOD SP request-target SP HTTP-version` (RFC 9112 §3). */
export function parseRequestLine(line: string): { method: string; target: string; version: string } {
  const parts = line.split(' ');
  if (parts.length !== 3 || !TOKEN.test(parts[0]!) || parts[1]!.length === 0 || !/^HTTP\/\d\.\d$/.test(parts[2]!)) {
    throw new HeadParseError('malformed request line', 400);
  }
  return { method: parts[0]!, target: parts[1]!, version: parts[2]! };
}

/** `HTTP-version SP status-code SP [reason-phrase]` (RFC 9112 §4). */
export function parseStatusLine(line: string): { version: string; status: number; reason: string } {
  const match = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(line);
  if (!match) throw new HeadParseError('malformed status line', 502);
  return { version: match[1]!, status: Number(match[2]), reason: match[3] ?? '' };
}

/** Whether a comma-separated header value contains `token`, compared case-insensitively. */
export function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  const wanted = token.toLowerCase();
  return value.split(',').some((item) => item.trim().toLowerCase() === wanted);
}

/** The items of a comma-separated header value, trimmed, empty ones dropped. */
export function splitList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

const STATUS_TEXT: Record<number, string> = {
  101: 'Switching Protocols',
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Unknown';
}

/** Serialise a response head (and body, if any) to bytes. */
export function serializeResponse(
  status: number,
  reason: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body?: Uint8Array,
): Buffer {
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  head += '\r\n';
  if (!body || body.length === 0) return Buffer.from(head, 'latin1');
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}
