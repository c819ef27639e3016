import { InvalidStateError } from './errors.js';
import {
  errorResponse,
  serializeHandshakeResponse,
  switchingProtocolsResponse,
  toHandshakeRequest,
  validateRequest,
  type HandshakeRequest,
  type HandshakeResponse,
  ReceivedRequest,
} from './handshake.js';
import { HeadCollector, HeadParseError, statusText } from './http1.js';
import { checkProtocolOptions, deflateOptions, Protocol, State, type ProtocolOptions } from './protocol.js';
import { formatExtensions, parseExtensions } from './extensions.js';
import { acceptOffer, MessageDeflater } from './permessage-deflate.js';

export interface ServerProtocolOptions extends ProtocolOptions {
  /** Most bytes the request head may take. Default 16 KiB; over it: 431. */
  maxHeadBytes?: number;
  /** Most header fields in the request. Default 100; over it: 431. */
  maxHeaders?: number;
  /** Subprotocols this server speaks, in its order of preference. */
  subprotocols?: readonly string[];
  /**
   * Pick the subprotocol from those the client offered (null: none). Overrides
   * `subprotocols`' default choice: the first of ours the client offered.
   */
  selectSubprotocol?: (offered: readonly string[], request: HandshakeRequest) => string | null;
}

export interface AcceptOptions {
  /** The subprotocol to confirm; by default chosen with the protocol's options. */
  subprotocol?: string | null;
  /** Extra response headers (e.g. Set-Cookie). */
  headers?: ReadonlyArray<readonly [string, string]>;
}

/**
 * The server side of a WebSocket connection, sans I/O: it parses the opening
 * handshake request, lets its owner `accept` or `reject` it, then speaks
 * RFC 6455 frames.
 */
export class ServerProtocol extends Protocol {
  get side(): 'server' {
    return 'server';
  }

  /** The request once its head is complete; only its text once the connection is open. */
  private received: ReceivedRequest | string | null = null;
  /** The subprotocol confirmed in the handshake, if any. */
  subprotocol: string | null = null;
  /** The status of the handshake response, once sent. */
  responseStatus: number | null = null;

  /** Collects the request head; dropped once it is complete. */
  private head: HeadCollector | null;
  protected declare options: ServerProtocolOptions;

  /**
   * Start from a request an HTTP server has already parsed (Node's 'upgrade'
   * event): its head is written out again from the request line and the raw
   * header lines and read like any received bytes, so it meets exactly the
   * same parser, limits, validation and answers. `head` is what came after
   * it on the socket (frames a client sent early).
   */
  receiveParsedRequest(parsed: ParsedRequestHead, head: Uint8Array = EMPTY_HEAD): void {
    if (this.state !== State.CONNECTING || this.head === null || this.received !== null) {
      throw new InvalidStateError('a request was already received');
    }
    this.receiveData(Buffer.from(requestHeadText(parsed), 'latin1'));
    if (head.length > 0) this.receiveData(head);
  }

  /**
   * Replace the options for the rest of this connection (a route's own
   * subprotocols and limits), before the handshake is answered. The head
   * limits no longer matter then: the request is already in.
   */
  configure(options: ServerProtocolOptions): void {
    if (this.responseStatus !== null) throw new InvalidStateError('the handshake was already answered');
    checkProtocolOptions(options);
    this.options = options;
  }

  /** The handshake request, once its head is complete. */
  get request(): ReceivedRequest | null {
    const received = this.received;
    if (typeof received !== 'string') return received;
    // Parsed again from the text on first use after the handshake.
    return (this.received = new ReceivedRequest(received));
  }

  constructor(options: ServerProtocolOptions = {}) {
    super(options);
    this.head = new HeadCollector(options);
  }

  /**
   * The response that accepts `request`: 101 when it is a valid WebSocket
   * handshake (§4.2.2), else a 4xx that says what is wrong.
   */
  accept(request: HandshakeRequest | null = this.request, options: AcceptOptions = {}): HandshakeResponse {
    if (request === null) throw new InvalidStateError('no handshake request has been received');
    const problem = validateRequest(request);
    if (problem) return errorResponse(problem.status, problem.message, problem.headers);
    const subprotocol = options.subprotocol !== undefined ? options.subprotocol : this.chooseSubprotocol(request);
    if (subprotocol !== null && !request.subprotocols.includes(subprotocol)) {
      throw new RangeError(`subprotocol "${subprotocol}" was not offered by the client`);
    }
    return switchingProtocolsResponse(request.headers['sec-websocket-key']!, subprotocol, this.negotiateExtensions(request, options.headers ?? []));
  }

  /**
   * The response headers with our answer to the client's extension offers
   * added (permessage-deflate, unless turned off); the agreed compression is
   * kept for when the 101 is sent.
   */
  private negotiateExtensions(request: HandshakeRequest, headers: ReadonlyArray<readonly [string, string]>): ReadonlyArray<readonly [string, string]> {
    this.deflate = null;
    const offered = request.headers['sec-websocket-extensions'];
    const options = deflateOptions(this.options);
    if (offered === undefined || options === null) return headers;
    const chosen = acceptOffer(parseExtensions(offered), options);
    if (chosen === null) return headers;
    this.deflate = new MessageDeflater(chosen.params, 'server', options);
    return [...headers, ['Sec-WebSocket-Extensions', formatExtensions([chosen.response])]];
  }

  /** A response refusing the handshake with `status` and a short plain-text body. */
  reject(status: number, message = statusText(status), headers: ReadonlyArray<readonly [string, string]> = []): HandshakeResponse {
    if (!Number.isInteger(status) || status < 300 || status > 599) {
      throw new RangeError(`a rejection needs a 3xx–5xx status, not ${status}`);
    }
    return errorResponse(status, message, headers);
  }

  /** Send the handshake response: 101 opens the connection, anything else closes it. */
  sendResponse(response: HandshakeResponse): void {
    if (this.state !== State.CONNECTING || this.responseStatus !== null) {
      throw new InvalidStateError('the handshake response was already sent');
    }
    this.responseStatus = response.status;
    this.head = null;
    this.pushOutput(serializeHandshakeResponse(response));
    // Compression stands only when the 101 sent says so (a response made elsewhere may not).
    if (response.status !== 101 || headerValue(response, 'sec-websocket-extensions') === null) this.deflate = null;
    if (response.status === 101) {
      this.subprotocol = headerValue(response, 'sec-websocket-protocol');
      // The connection may idle for hours: keep the request's text, not its parsed form.
      if (this.received instanceof ReceivedRequest) this.received = this.received.head;
      this.openConnection();
    } else {
      this.discardInput();
      this.state = State.CLOSED;
      this.sendEof();
    }
  }

  protected override nextMask(): null {
    return null;
  }

  protected override receiveHandshakeData(chunk: Buffer): void {
    if (this.received !== null) {
      // Frames sent before our response: keep them (bounded) for when we open.
      this.queue.push(chunk);
      this.limitEarlyData();
      return;
    }
    try {
      if (this.head === null) return;
      const complete = this.head.push(chunk);
      if (complete === null) return;
      this.head = null;
      const request = toHandshakeRequest(complete.head);
      this.received = request;
      this.queue.push(complete.rest);
      this.emit({ type: 'request', request });
      // The read that completed the head may carry frames too: the same bound applies to them. The
      // request was still received (the same events however the bytes were cut); the owner sees
      // the refusal in responseStatus and answers nothing.
      this.limitEarlyData();
    } catch (error) {
      if (!(error instanceof HeadParseError)) throw error;
      this.refuse(error.status, error.message);
    }
  }

  /** Frames received before our response are kept up to one maximal frame; more is refused with 400. */
  private limitEarlyData(): void {
    if (this.queue.length > this.maxPayload + 14) this.refuse(400, 'too much data before the handshake response');
  }

  /** Answer an unparseable or oversized request ourselves: nobody can act on it. */
  private refuse(status: number, message: string): void {
    this.sendResponse(errorResponse(status, message));
  }

  /** The subprotocol accept() would confirm for `request` with the current options (null: none). */
  chooseSubprotocol(request: HandshakeRequest): string | null {
    const { selectSubprotocol, subprotocols = NONE } = this.options;
    if (selectSubprotocol) return selectSubprotocol(request.subprotocols, request);
    for (const candidate of subprotocols) {
      if (request.subprotocols.includes(candidate)) return candidate;
    }
    return null;
  }
}

const NONE: readonly string[] = Object.freeze([]);
const EMPTY_HEAD = new Uint8Array(0);

/** A request line and header lines as an HTTP server parsed them (Node's IncomingMessage has these). */
export interface ParsedRequestHead {
  method: string;
  /** The request target, e.g. `/chat?room=1`. */
  url: string;
  /** e.g. `1.1`. */
  httpVersion: string;
  /** Names and values as received, alternating. */
  rawHeaders: readonly string[];
}

/** The head's bytes again, as a client would have sent them. */
function requestHeadText(parsed: ParsedRequestHead): string {
  let text = `${parsed.method} ${parsed.url} HTTP/${parsed.httpVersion}\r\n`;
  const raw = parsed.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${text}\r\n`;
}

/** `name` in lower case. */
function headerValue(response: HandshakeResponse, name: string): string | null {
  const headers = response.headers;
  for (let i = 0; i < headers.length; i++) {
    const key = headers[i]![0];
    if (key.length === name.length && key.toLowerCase() === name) return headers[i]![1];
  }
  return null;
}
