/** Base class of every error resound raises on purpose. */
export class WebSocketError extends Error {
  override name = 'WebSocketError';
}

/**
 * The peer broke RFC 6455 (or a configured limit); `closeCode` is the status
 * code the connection was failed with (§7.4.1).
 */
export class ProtocolError extends WebSocketError {
  override name = 'ProtocolError';
  constructor(
    message: string,
    readonly closeCode: number,
  ) {
    super(message);
  }
}

/** The opening handshake failed; `status` is the HTTP status involved. */
export class HandshakeError extends WebSocketError {
  override name = 'HandshakeError';
  constructor(
    message: string,
    readonly status: number,
    readonly headers: Readonly<Record<string, string>> = {},
    readonly body: Uint8Array = new Uint8Array(0),
  ) {
    super(message);
  }
}

/** An operation was asked for in a state that does not allow it (e.g. sending after close). */
export class InvalidStateError extends WebSocketError {
  override name = 'InvalidStateError';
}
