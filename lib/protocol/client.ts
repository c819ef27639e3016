import { randomFillSync } from 'node:crypto';
import { HandshakeError, InvalidStateError } from './errors.js';
import { computeAcceptKey, type ClientHandshakeResponse, type HandshakeRequest } from './handshake.js';
import {
  foldHeaders,
  hasToken,
  HeadCollector,
  HeadParseError,
  isFieldValue,
  isToken,
  parseStatusLine,
} from './http1.js';
import { deflateOptions, Protocol, State, type ProtocolOptions } from './protocol.js';
import { ExtensionHeaderError, formatExtensions, parseExtensions, type Extension } from './extensions.js';
import { acceptResponse, checkDeflateOptions, clientOffer, MessageDeflater } from './permessage-deflate.js';

export interface ClientProtocolOptions extends ProtocolOptions {
  /** Sent as the Origin header, as browsers do. */
  origin?: string;
  /** Subprotocols to offer, in order of preference. */
  subprotocols?: readonly string[];
  /** Extra request headers (e.g. Authorization, Cookie). */
  headers?: Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]>;
  /** Most bytes the response head may take. Default 16 KiB. */
  maxHeadBytes?: number;
  /** Most header fields in the response. Default 100. */
  maxHeaders?: number;
  /** The Sec-WebSocket-Key to send; random by default (tests pin it). */
  key?: string;
}

/** Headers the protocol sets itself; user-supplied ones of these names would break the handshake. */
const RESERVED_HEADERS = new Set([
  'host',
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

/** Random bytes come from a pool, refilled in bulk: one masking key per frame. */
const MASK_POOL_SIZE = 8192;
let maskPool = Buffer.alloc(0);
let maskPoolOffset = MASK_POOL_SIZE;

function randomMask(): Buffer {
  if (maskPoolOffset + 4 > maskPool.length) {
    maskPool = randomFillSync(Buffer.allocUnsafe(MASK_POOL_SIZE));
    maskPoolOffset = 0;
  }
  const mask = maskPool.subarray(maskPoolOffset, maskPoolOffset + 4);
  maskPoolOffset += 4;
  return mask;
}

/**
 * The client side of a WebSocket connection, sans I/O: it builds the opening
 * handshake, checks the server's answer (§4.1), masks every frame it sends
 * with a fresh key and refuses masked frames from the server.
 */
export class ClientProtocol extends Protocol {
  get side(): 'client' {
    return 'client';
  }

  /** The handshake request this client sends. */
  readonly request: HandshakeRequest;
  /** The server's response, once received. */
  response: ClientHandshakeResponse | null = null;
  /** Why the handshake failed, if it did. */
  handshakeError: HandshakeError | null = null;
  /** The subprotocol the server chose, if any. */
  subprotocol: string | null = null;

  private readonly key: string;
  private readonly head: HeadCollector;
  private requestSent = false;
  /** Bytes of the response seen so far, to spot a non-HTTP answer at its first bytes. */
  private prefixChecked = 0;

  constructor(url: string | URL, options: ClientProtocolOptions = {}) {
    super(options);
    const target = typeof url === 'string' ? new URL(url) : url;
    if (target.protocol !== 'ws:' && target.protocol !== 'wss:') {
      throw new TypeError(`a WebSocket URL starts with ws:// or wss://, not ${target.protocol}//`);
    }
    if (target.hash !== '') throw new TypeError('a WebSocket URL has no fragment');
    this.key = options.key ?? randomFillSync(Buffer.allocUnsafe(16)).toString('base64');
    this.head = new HeadCollector(options);
    this.request = buildRequest(target, this.key, options);
  }

  /** Queue the opening handshake request for sending. */
  sendRequest(): void {
    if (this.requestSent) throw new InvalidStateError('the handshake request was already sent');
    this.requestSent = true;
    let head = `GET ${this.request.target} HTTP/1.1\r\n`;
    const raw = this.request.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    this.pushOutput(Buffer.from(`${head}\r\n`, 'latin1'));
  }

  protected override nextMask(): Buffer {
    return randomMask();
  }

  protected override receiveHandshakeData(chunk: Buffer): void {
    try {
      this.checkHttpPrefix(chunk);
      const complete = this.head.push(chunk);
      if (complete === null) return;
      const { status, reason } = parseStatusLine(complete.head.startLine);
      const response: ClientHandshakeResponse = {
        status,
        reason,
        headers: complete.head.headers,
        rawHeaders: complete.head.rawHeaders,
      };
      this.response = response;
      this.checkResponse(response, complete.rest);
      this.subprotocol = response.headers['sec-websocket-protocol'] ?? null;
      this.queue.push(complete.rest);
      this.emit({ type: 'response', response, error: null });
      this.openConnection();
    } catch (error) {
      if (error instanceof HeadParseError) {
        this.failHandshake(new HandshakeError(`malformed handshake response: ${error.message}`, 0));
      } else if (error instanceof HandshakeError) {
        this.failHandshake(error);
      } else {
        throw error;
      }
    }
  }

  /** Refuse an answer that is not HTTP from its first bytes, rather than wait for a head that never ends. */
  private checkHttpPrefix(chunk: Buffer): void {
    const expected = 'HTTP/';
    for (let i = 0; this.prefixChecked < expected.length && i < chunk.length; i++, this.prefixChecked++) {
      if (chunk[i] !== expected.charCodeAt(this.prefixChecked)) {
        throw new HandshakeError('the server did not answer with HTTP', 0);
      }
    }
  }

  /** §4.1: the checks a client makes of the server's handshake response. */
  private checkResponse(response: ClientHandshakeResponse, rest: Buffer): void {
    const h = response.headers;
    const flat = { ...h };
    if (response.status !== 101) {
      throw new HandshakeError(
        `the server answered ${response.status} ${response.reason} instead of 101`,
        response.status,
        flat,
        Buffer.from(rest),
      );
    }
    const refuse = (message: string): never => {
      throw new HandshakeError(message, response.status, flat);
    };
    if (!hasToken(h['upgrade'], 'websocket')) refuse('the response lacks "Upgrade: websocket"');
    if (!hasToken(h['connection'], 'upgrade')) refuse('the response lacks "Connection: Upgrade"');
    if (h['sec-websocket-accept'] !== computeAcceptKey(this.key)) refuse('wrong Sec-WebSocket-Accept');
    this.acceptExtensions(h['sec-websocket-extensions'], refuse);
    const protocol = h['sec-websocket-protocol'];
    if (protocol !== undefined && !this.request.subprotocols.includes(protocol)) {
      refuse(`the server chose subprotocol "${protocol}", which was not offered`);
    }
  }

  /** The server's answer to our offer: nothing, or permessage-deflate within what we offered. */
  private acceptExtensions(header: string | undefined, refuse: (message: string) => never): void {
    if (header === undefined) return;
    let answered: Extension[];
    try {
      answered = parseExtensions(header);
    } catch (error) {
      if (!(error instanceof ExtensionHeaderError)) throw error;
      return refuse(`malformed answer: ${error.message}`);
    }
    if (answered.length === 0) return;
    const options = deflateOptions(this.options);
    if (options === null || answered.length > 1) return refuse(`the server accepted extensions that were not offered: ${header}`);
    const params = acceptResponse(answered[0]!, options);
    if (typeof params === 'string') return refuse(params);
    this.deflate = new MessageDeflater(params, 'client', options);
  }

  private failHandshake(error: HandshakeError): void {
    this.handshakeError = error;
    this.emit({ type: 'response', response: this.response, error });
    this.discardInput();
    this.state = State.CLOSED;
    this.sendEof();
  }
}

function buildRequest(url: URL, key: string, options: ClientProtocolOptions): HandshakeRequest {
  const target = `${url.pathname || '/'}${url.search}`;
  const defaultPort = url.protocol === 'wss:' ? '443' : '80';
  const host = url.port !== '' && url.port !== defaultPort ? `${url.hostname}:${url.port}` : url.hostname;
  const raw: string[] = ['Host', host, 'Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Key', key, 'Sec-WebSocket-Version', '13'];
  if (options.origin !== undefined) {
    if (!isFieldValue(options.origin)) throw new TypeError('origin contains characters a header value cannot carry');
    raw.push('Origin', options.origin);
  }
  const subprotocols = [...(options.subprotocols ?? [])];
  // §4.1: each subprotocol is a token, and none is offered twice.
  for (const name of subprotocols) {
    if (!isToken(name)) throw new TypeError(`subprotocol ${JSON.stringify(name)} is not a token`);
  }
  if (new Set(subprotocols).size !== subprotocols.length) throw new TypeError('a subprotocol is offered twice');
  if (subprotocols.length > 0) raw.push('Sec-WebSocket-Protocol', subprotocols.join(', '));
  const deflate = deflateOptions(options);
  if (deflate !== null) {
    checkDeflateOptions(deflate);
    raw.push('Sec-WebSocket-Extensions', formatExtensions([clientOffer(deflate)]));
  }
  const extra = options.headers === undefined ? [] : Array.isArray(options.headers) ? options.headers : Object.entries(options.headers);
  for (const [name, value] of extra as Array<readonly [string, string]>) {
    if (!isToken(name)) throw new TypeError(`header name ${JSON.stringify(name)} is not a token`);
    if (RESERVED_HEADERS.has(name.toLowerCase())) throw new TypeError(`header ${name} is set by the protocol`);
    if (!isFieldValue(value)) throw new TypeError(`header ${name} has characters a header value cannot carry`);
    raw.push(name, value);
  }
  return {
    method: 'GET',
    target,
    path: url.pathname || '/',
    query: new URLSearchParams(url.search),
    httpVersion: 'HTTP/1.1',
    headers: foldHeaders(raw),
    rawHeaders: raw,
    subprotocols,
  };
}
