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

/** A complete message head: start line and header fields. */
export class ParsedHead {
  private raw: string[] | null = null;

  constructor(
    /** The whole head as received, up to and without the empty line. */
    readonly text: string,
    readonly startLine: string,
    /** The header lines, as received (CRLF-separated). */
    readonly fields: string,
    /** Lower-case names, repeats joined by ", ". */
    readonly headers: HeaderFields,
  ) {}

  /** Names and values as received, alternating (like Node's `rawHeaders`); built on first use. */
  get rawHeaders(): string[] {
    return (this.raw ??= parseFieldLines(this.fields));
  }
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

const NO_BYTES = Buffer.alloc(0);

export class HeadCollector {
  /** Earlier pieces of a head that spans reads; most heads arrive in one. */
  private chunks: Buffer[] | null = null;
  private size = 0;
  /** How much of CR LF CR LF the bytes seen so far end with. */
  private matched = 0;
  /** Lines ended so far (start line included), to refuse too many headers before the head ends. */
  private lines = 0;

  /** Limits left out are the defaults: a protocol passes its own options, with no object per connection. */
  constructor(private readonly limits: Partial<HeadLimits> = DEFAULT_HEAD_LIMITS) {}

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
        if (matched === 2 && ++this.lines > (this.limits.maxHeaders ?? DEFAULT_HEAD_LIMITS.maxHeaders) + 1) {
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
    if (this.size + taken > (this.limits.maxHeadBytes ?? DEFAULT_HEAD_LIMITS.maxHeadBytes)) {
      throw new HeadParseError('message head too large', 431);
    }
    if (end === -1) {
      (this.chunks ??= []).push(chunk);
      this.size += taken;
      return null;
    }
    let text: string;
    if (this.chunks === null) {
      text = chunk.toString('latin1', 0, end - 4);
    } else {
      this.chunks.push(chunk.subarray(0, end));
      const bytes = Buffer.concat(this.chunks);
      text = bytes.toString('latin1', 0, bytes.length - 4);
    }
    return { head: parseHead(text), rest: end === chunk.length ? NO_BYTES : chunk.subarray(end) };
  }
}

function parseHead(text: string): ParsedHead {
  const firstBreak = text.indexOf('\r\n');
  const startLine = firstBreak === -1 ? text : text.slice(0, firstBreak);
  const fields = fieldLines(text);
  return new ParsedHead(text, startLine, fields, parseFields(fields));
}

/**
 * Header objects with no Object.prototype behind them (no inherited
 * "constructor", no "__proto__" setter), yet in V8's fast mode:
 * Object.create(null) would make every one a dictionary.
 */
const HEADER_FIELDS_PROTOTYPE: object = Object.freeze(Object.create(null));

function newHeaderFields(): HeaderFields {
  return Object.create(HEADER_FIELDS_PROTOTYPE) as HeaderFields;
}

/**
 * Call `onField(target, name, value)` for every header line of `fields`
 * (CRLF-separated), checked (RFC 9112 §5). One pass with indexOf and no
 * closure: every handshake goes through here.
 */
function scanFields<T>(fields: string, onField: (target: T, name: string, value: string) => void, target: T): T {
  for (let start = 0; start < fields.length; ) {
    let end = fields.indexOf('\r\n', start);
    if (end === -1) end = fields.length;
    const colon = fields.indexOf(':', start);
    // §5.2: obsolete line folding (a line starting with whitespace) is refused.
    if (colon <= start || colon >= end) throw new HeadParseError('malformed header line', 400);
    const name = fields.slice(start, colon);
    // §5.1: no whitespace between the field name and the colon.
    if (!TOKEN.test(name)) throw new HeadParseError('invalid header name', 400);
    let valueStart = colon + 1;
    let valueEnd = end;
    while (valueStart < valueEnd && isBlank(fields.charCodeAt(valueStart))) valueStart++;
    while (valueEnd > valueStart && isBlank(fields.charCodeAt(valueEnd - 1))) valueEnd--;
    const value = fields.slice(valueStart, valueEnd);
    if (!FIELD_VALUE.test(value)) throw new HeadParseError(`invalid value for header ${name}`, 400);
    onField(target, name, value);
    start = end + 2;
  }
  return target;
}

/** Space or horizontal tab: optional whitespace around a field value (RFC 9110 §5.6.3). */
function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

function appendRaw(raw: string[], name: string, value: string): void {
  raw.push(name, value);
}

/** RFC 9110 §5.3: names compared case-insensitively, repeated fields joined by ", ". */
function addFolded(headers: HeaderFields, name: string, value: string): void {
  const key = name.toLowerCase();
  const previous = headers[key];
  headers[key] = previous === undefined ? value : `${previous}, ${value}`;
}

/** The header lines of a head (CRLF-separated) as alternating names and values, checked (RFC 9112 §5). */
export function parseFieldLines(fields: string): string[] {
  return scanFields(fields, appendRaw, []);
}

/** The header lines of a head (its text without the start line). */
export function fieldLines(text: string): string {
  const firstBreak = text.indexOf('\r\n');
  return firstBreak === -1 ? '' : text.slice(firstBreak + 2);
}

/** The header lines of a head as lower-case names and folded values, checked (RFC 9112 §5). */
export function parseFields(fields: string): HeaderFields {
  return scanFields(fields, addFolded, newHeaderFields());
}

/** Alternating names and values → lower-case names, repeats joined by ", " (RFC 9110 §5.3). */
export function foldHeaders(rawHeaders: readonly string[]): HeaderFields {
  const headers = newHeaderFields();
  for (let i = 0; i < rawHeaders.length; i += 2) addFolded(headers, rawHeaders[i]!, rawHeaders[i + 1]!);
  return headers;
}

/** `METHOD SP request-target SP HTTP-version` (RFC 9112 §3). */
export function parseRequestLine(line: string): { method: string; target: string; version: string } {
  const firstSpace = line.indexOf(' ');
  const secondSpace = firstSpace === -1 ? -1 : line.indexOf(' ', firstSpace + 1);
  const methodText = line.slice(0, firstSpace);
  const target = line.slice(firstSpace + 1, secondSpace);
  const versionText = line.slice(secondSpace + 1);
  if (
    secondSpace === -1 ||
    line.indexOf(' ', secondSpace + 1) !== -1 ||
    !TOKEN.test(methodText) ||
    target.length === 0 ||
    !/^HTTP\/\d\.\d$/.test(versionText)
  ) {
    throw new HeadParseError('malformed request line', 400);
  }
  // The usual method and version as literals: a connection keeps its request, and literals are shared.
  const method = methodText === 'GET' ? 'GET' : methodText;
  const version = versionText === 'HTTP/1.1' ? 'HTTP/1.1' : versionText;
  return { method, target, version };
}

/** `HTTP-version SP status-code SP [reason-phrase]` (RFC 9112 §4). */
export function parseStatusLine(line: string): { version: string; status: number; reason: string } {
  const match = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(line);
  if (!match) throw new HeadParseError('malformed status line', 502);
  return { version: match[1]!, status: Number(match[2]), reason: match[3] ?? '' };
}

/** Whether a comma-separated header value contains `token` (given in lower case), compared case-insensitively. */
export function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  // The usual value is the token alone: no list to split.
  if (value.length === token.length && value.toLowerCase() === token) return true;
  return value.split(',').some((item) => item.trim().toLowerCase() === token);
}

/** The items of a comma-separated header value, trimmed, empty ones dropped. */
export function splitList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** RFC 9110 §15 reason phrases, for every status a handshake answer (or a hook's reject) may use. */
const STATUS_TEXT: Record<number, string> = {
  101: 'Switching Protocols',
  200: 'OK',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  304: 'Not Modified',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  417: 'Expectation Failed',
  421: 'Misdirected Request',
  422: 'Unprocessable Content',
  426: 'Upgrade Required',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
  511: 'Network Authentication Required',
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Unknown';
}

/** Serialise a response head (and body, if any) to bytes, written straight into one buffer. */
export function serializeResponse(
  status: number,
  reason: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body?: Uint8Array,
): Buffer {
  const statusLine = `HTTP/1.1 ${status} ${reason}\r\n`;
  let size = statusLine.length + 2 + (body?.length ?? 0);
  for (let i = 0; i < headers.length; i++) size += headers[i]![0].length + headers[i]![1].length + 4;
  const out = Buffer.allocUnsafe(size);
  let at = out.write(statusLine, 0, 'latin1');
  for (let i = 0; i < headers.length; i++) {
    const header = headers[i]!;
    at += out.write(header[0], at, 'latin1');
    at += out.write(': ', at, 'latin1');
    at += out.write(header[1], at, 'latin1');
    at += out.write('\r\n', at, 'latin1');
  }
  at += out.write('\r\n', at, 'latin1');
  if (body !== undefined && body.length > 0) out.set(body, at);
  return out;
}
