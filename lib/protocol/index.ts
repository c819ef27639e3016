/** The sans-IO core: bytes in, events and bytes out. No sockets, timers or promises. */
export { ServerProtocol, type ServerProtocolOptions, type AcceptOptions, type ParsedRequestHead } from './server.js';
export { ClientProtocol, type ClientProtocolOptions } from './client.js';
export {
  Protocol,
  State,
  STATE_NAMES,
  DEFAULT_MAX_PAYLOAD,
  isEof,
  encodeClosePayload,
  decodeClosePayload,
  type Side,
  type Message,
  type ProtocolEvent,
  type ProtocolOptions,
  type CloseInfo,
  type SendOptions,
} from './protocol.js';
export { parseExtensions, formatExtensions, ExtensionHeaderError, type Extension } from './extensions.js';
export { PERMESSAGE_DEFLATE, type PerMessageDeflateOptions, type DeflateParams } from './permessage-deflate.js';
export { CloseCode, isValidWireCloseCode, MAX_CLOSE_REASON_BYTES } from './close.js';
export { WebSocketError, ProtocolError, HandshakeError, InvalidStateError } from './errors.js';
export { Opcode, MAX_CONTROL_PAYLOAD, writeFrameHeader, headerLength } from './frame.js';
export { applyMask } from './mask.js';
export { PreparedMessage } from './prepared.js';
export { Utf8Validator, isValidUtf8 } from './utf8.js';
export {
  computeAcceptKey,
  validateRequest,
  type HandshakeRequest,
  type HandshakeResponse,
  type HandshakeProblem,
  type ClientHandshakeResponse,
} from './handshake.js';
export { type HeaderFields, DEFAULT_HEAD_LIMITS } from './http1.js';
