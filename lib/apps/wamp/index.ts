/** WAMP v1 (wamp.ws/spec/wamp1): a subprotocol for speak() and a client. See docs/wamp.md. */
export { wamp, wampEvent } from './server.js';
export type { CallContext, ProcedureHandler, PublishContext, TopicContext, TopicHandler, WampApp, WampMessageContext, WampOptions, WampProtocol, WampSession } from './server.js';
export { connectWamp, WampProtocolError } from './client.js';
export type { EventCallback, WampClient, WampClientOptions } from './client.js';
export { WAMP, WAMP_ERRORS, WAMP_PROTOCOL_VERSION, WampError } from './messages.js';
export { compilePattern, expandCurie, UriRouter } from './uri.js';
export type { CurieRule, UriPattern } from './uri.js';
