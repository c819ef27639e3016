/** resound: a zero-dependency WebSocket server and client for Node.js. */
export { serve, Server, type Handler, type MessageHandler, type ServeOptions } from './server/serve.js';
export { TCPListener } from './server/listener.js';
export { connect, TimeoutError, type ConnectOptions } from './client/connect.js';
export {
  HandlerError,
  ConnectionClosedError,
  SendTimeoutError,
  SocketClosedError,
  type WSConnection,
  type ConnectionHandler,
  type ConnectionState,
  type ConnectionOptions,
} from './connection.js';
export * from './protocol/index.js';
