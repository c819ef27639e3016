/** WAMP v1 message type ids (wamp.ws/spec/wamp1) and the error URIs resound answers with. */
export const WAMP = {
  WELCOME: 0,
  PREFIX: 1,
  CALL: 2,
  CALLRESULT: 3,
  CALLERROR: 4,
  SUBSCRIBE: 5,
  UNSUBSCRIBE: 6,
  PUBLISH: 7,
  EVENT: 8,
} as const;

/** The protocol version WELCOME announces. */
export const WAMP_PROTOCOL_VERSION = 1;

/**
 * Error URIs of CALLERROR when the handler did not pick its own (the WAMP v1
 * spec leaves them to the application; these follow Ratchet's namespace).
 */
export const WAMP_ERRORS = {
  /** The handler failed with something other than a WampError. */
  generic: 'http://api.wamp.ws/error#generic',
  /** No procedure is routed at that URI. */
  notFound: 'http://api.wamp.ws/error#notfound',
  /** The CALL was malformed (its procedure URI not a string). */
  invalid: 'http://api.wamp.ws/error#invalid',
  /** Too many calls of this connection are in flight (`maxCallsInFlight`). */
  busy: 'http://api.wamp.ws/error#busy',
} as const;

/**
 * What an RPC handler throws to answer with CALLERROR
 * `[4, callId, uri, description(, details)]`; on the client, what a call
 * rejects with when the server answered CALLERROR.
 */
export class WampError extends Error {
  override name = 'WampError';
  constructor(
    readonly uri: string,
    readonly description: string,
    readonly details?: unknown,
  ) {
    super(description);
  }
}
