import * as crypto from 'node:crypto';
import { ExtensionHeaderError, parseExtensions } from './extensions.js';
import {
  hasToken,
  fieldLines,
  parseFieldLines,
  parseFields,
  parseRequestLine,
  serializeResponse,
  splitList,
  statusText,
  type HeaderFields,
  type ParsedHead,
} from './http1.js';

/** §1.3: the GUID appended to Sec-WebSocket-Key before hashing. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** base64 of exactly 16 bytes: 22 significant characters and "==". */
const KEY_SHAPE = /^[A-Za-z0-9+/]{22}==$/;

/** One-shot hashing (Node ≥ 20.12) costs no Hash object per handshake; older 20.x use createHash. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64') => string }).hash;

export function computeAcceptKey(key: string): string {
  if (oneShotHash !== undefined) return oneShotHash('sha1', key + WEBSOCKET_GUID, 'base64');
  return crypto.createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

export function isValidKey(key: string | undefined): key is string {
  return key !== undefined && KEY_SHAPE.test(key);
}

/** The opening handshake request: received by a server, sent by a client. */
export interface HandshakeRequest {
  readonly method: string;
  /** The request target as sent, e.g. `/chat?room=1`. */
  readonly target: string;
  /** The path part of the target, e.g. `/chat`. */
  readonly path: string;
  /** The query part of the target. */
  readonly query: URLSearchParams;
  readonly httpVersion: string;
  /** Header names in lower case; repeated fields joined by ", ". */
  readonly headers: HeaderFields;
  /** Names and values as received, alternating. */
  readonly rawHeaders: string[];
  /** Subprotocols offered, in order of preference. */
  readonly subprotocols: string[];
}

/** What parsing a received request's head produced; dropped when the connection opens. */
interface ParsedRequest {
  method: string;
  target: string;
  httpVersion: string;
  headers: HeaderFields | null;
  rawHeaders: string[] | null;
  query: URLSearchParams | null;
}

/**
 * A request as a server received it, parsed on first use from the head's
 * text. Once the connection is open the protocol keeps only that text and
 * builds a new ReceivedRequest from it if the application asks: an idle
 * connection holds one string.
 */
export class ReceivedRequest implements HandshakeRequest {
  private parsed: ParsedRequest | null;

  constructor(
    /** The request head's text: all it needs to parse again. */
    readonly head: string,
    parsed: ParsedRequest | null = null,
  ) {
    this.parsed = parsed;
  }

  get method(): string {
    return this.parse().method;
  }

  get target(): string {
    return this.parse().target;
  }

  get httpVersion(): string {
    return this.parse().httpVersion;
  }

  get path(): string {
    const target = this.target;
    const questionMark = target.indexOf('?');
    return questionMark === -1 ? target : target.slice(0, questionMark);
  }

  get query(): URLSearchParams {
    const parsed = this.parse();
    if (parsed.query === null) {
      const questionMark = parsed.target.indexOf('?');
      parsed.query = new URLSearchParams(questionMark === -1 ? '' : parsed.target.slice(questionMark + 1));
    }
    return parsed.query;
  }

  get rawHeaders(): string[] {
    const parsed = this.parse();
    return (parsed.rawHeaders ??= parseFieldLines(fieldLines(this.head)));
  }

  get headers(): HeaderFields {
    const parsed = this.parse();
    return (parsed.headers ??= parseFields(fieldLines(this.head)));
  }

  get subprotocols(): string[] {
    return splitList(this.headers['sec-websocket-protocol']);
  }

  private parse(): ParsedRequest {
    if (this.parsed === null) {
      const lineEnd = this.head.indexOf('\r\n');
      // The head was checked when it arrived: its request line parses again.
      this.parsed = parseRequest(lineEnd === -1 ? this.head : this.head.slice(0, lineEnd), null);
    }
    return this.parsed;
  }
}

/** An HTTP response to the opening handshake. */
export interface HandshakeResponse {
  status: number;
  reason: string;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

/** The server's handshake response as a client received it. */
export interface ClientHandshakeResponse {
  status: number;
  reason: string;
  headers: HeaderFields;
  rawHeaders: string[];
}

/** Why a request cannot be upgraded, as the HTTP answer to give. */
export interface HandshakeProblem {
  status: number;
  message: string;
  headers?: Array<[string, string]>;
}

export function toHandshakeRequest(head: ParsedHead): ReceivedRequest {
  return new ReceivedRequest(head.text, parseRequest(head.startLine, head.headers));
}

/** The parse cache of a request: its request line, and its headers when already parsed. */
function parseRequest(requestLine: string, headers: HeaderFields | null): ParsedRequest {
  const { method, target, version } = parseRequestLine(requestLine);
  return { method, target, httpVersion: version, headers, rawHeaders: null, query: null };
}

/** A 101 has no body; one shared empty array serves every handshake. */
const NO_BODY = new Uint8Array(0);

const VERSION_HEADERS: Array<[string, string]> = [['Sec-WebSocket-Version', '13']];

/** RFC 6455 §4.2.1 checks, in the order a person debugging would want them. */
export function validateRequest(request: HandshakeRequest): HandshakeProblem | null {
  const h = request.headers;
  if (request.method !== 'GET') {
    return { status: 405, message: 'the opening handshake must be a GET request', headers: [['Allow', 'GET']] };
  }
  if (request.httpVersion !== 'HTTP/1.1') return { status: 400, message: 'the opening handshake needs HTTP/1.1' };
  if (!request.target.startsWith('/')) return { status: 400, message: 'the request target must be a path' };
  if (h['host'] === undefined || h['host'].length === 0) return { status: 400, message: 'missing Host header' };
  // RFC 9112 §3.2: exactly one Host field (repeats were joined with commas, which a host never contains).
  if (h['host'].includes(',')) return { status: 400, message: 'more than one Host header' };
  if (h['content-length'] !== undefined && h['content-length'] !== '0') {
    return { status: 400, message: 'the opening handshake carries no body' };
  }
  if (h['transfer-encoding'] !== undefined) return { status: 400, message: 'the opening handshake carries no body' };
  if (!hasToken(h['upgrade'], 'websocket')) {
    return {
      status: 426,
      message: 'this is a WebSocket endpoint: the request needs "Upgrade: websocket"',
      headers: [['Upgrade', 'websocket'], ...VERSION_HEADERS],
    };
  }
  if (!hasToken(h['connection'], 'upgrade')) {
    return { status: 400, message: 'the request needs "Connection: Upgrade"' };
  }
  if (!isValidKey(h['sec-websocket-key'])) {
    return { status: 400, message: 'Sec-WebSocket-Key must be the base64 encoding of 16 bytes' };
  }
  if (h['sec-websocket-version'] !== '13') {
    return { status: 426, message: 'unsupported Sec-WebSocket-Version: only 13 is spoken here', headers: VERSION_HEADERS };
  }
  const extensions = h['sec-websocket-extensions'];
  if (extensions !== undefined) {
    try {
      parseExtensions(extensions);
    } catch (error) {
      if (!(error instanceof ExtensionHeaderError)) throw error;
      return { status: 400, message: error.message };
    }
  }
  return null;
}

/** A response with a short plain-text body that tells a person what went wrong. */
export function errorResponse(
  status: number,
  message: string,
  extraHeaders: ReadonlyArray<readonly [string, string]> = [],
): HandshakeResponse {
  const body = Buffer.from(`${message}\n`, 'utf8');
  return {
    status,
    reason: statusText(status),
    headers: [
      ['Connection', 'close'],
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Length', String(body.length)],
      ...extraHeaders.map(([name, value]): [string, string] => [name, value]),
    ],
    body,
  };
}

export function switchingProtocolsResponse(
  key: string,
  subprotocol: string | null,
  extraHeaders: ReadonlyArray<readonly [string, string]> = [],
): HandshakeResponse {
  const headers: Array<[string, string]> = [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Accept', computeAcceptKey(key)],
  ];
  if (subprotocol !== null) headers.push(['Sec-WebSocket-Protocol', subprotocol]);
  for (const [name, value] of extraHeaders) headers.push([name, value]);
  return { status: 101, reason: statusText(101), headers, body: NO_BODY };
}

export function serializeHandshakeResponse(response: HandshakeResponse): Buffer {
  return serializeResponse(response.status, response.reason, response.headers, response.body);
}
