/** resound: a zero-dependency WebSocket server for Node.js. */
export { serve, Server, type Handler, type MessageHandler, type ServeOptions } from './server/serve.js';
export { TCPListener } from './server/listener.js';
export {
  HandlerError,
  type WSConnection,
  type ConnectionHandler,
  type ConnectionState,
} from './connection.js';
export * from './protocol/index.js';
