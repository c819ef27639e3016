/** resound: a zero-dependency WebSocket server and client for Node.js. */
export { serve, attach, Server, type Handler, type MessageHandler, type ServeOptions, type RouteOptions, type HttpServer, type RouteDefinition } from './server/serve.js';
export { reject, Rejection, type Policy, type Authorize, type UpgradeRequest } from './server/guard.js';
export { allowOrigins, allowAddresses, blockAddresses, type OriginPolicyOptions, type AddressPolicyOptions } from './server/policies.js';
export type { TlsOptions } from './server/tls.js';
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
  type BinaryData,
} from './connection.js';
export { lineLogger, jsonLogger, type Logger, type LogLevel, type LogRecord } from './log.js';
export { renderMetrics, metricsListener, listenMetrics, METRICS_CONTENT_TYPE, type StatsSource } from './metrics.js';
export type { ServerStats, ClusterStats } from './stats.js';
export { BrokerBase, type Broker, type BrokerLink, type BrokerStats, type BrokerState, type TopicData } from './broker/broker.js';
export { ClusterPrimary, startWorkers, type ClusterOptions } from './cluster/primary.js';
export { redisBroker, RedisBroker, type RedisBrokerOptions, type RedisClient, type NodeRedisClient, type IORedisClient } from './broker/redis.js';
export { redisBrokerFromUrl, type RedisUrlOptions, type RedisLibrary } from './broker/redis-url.js';
export { speak, Pipeline, type Subprotocol, type Middleware } from './apps/subprotocols.js';
export {
  jsonRpc,
  connectJsonRpc,
  jsonRpcClient,
  method,
  checkParams,
  JsonRpcEngine,
  JsonRpcError,
  JsonRpcTimeoutError,
  JsonRpcClosedError,
  JsonRpcCode,
  type JsonRpcOptions,
  type JsonRpcProtocol,
  type JsonRpcClient,
  type JsonRpcClientOptions,
  type EngineOptions,
  type MethodTable,
  type TableHandler,
  type MethodSpec,
  type MethodHandler,
  type CallContext as JsonRpcCallContext,
  type ParamsSchema,
  type ParamSpec,
  type ParamType,
  type ParamsOf,
  type JsonRpcContext,
  type JsonRpcCall,
  type JsonRpcMiddleware,
  type JsonRpcId,
  type JsonRpcParams,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type JsonRpcErrorObject,
  type RequestOptions as JsonRpcRequestOptions,
  type BatchCall,
  type BatchOutcome,
} from './apps/jsonrpc/index.js';
export {
  wamp,
  wampEvent,
  connectWamp,
  WampProtocolError,
  WampError,
  WAMP,
  WAMP_ERRORS,
  WAMP_PROTOCOL_VERSION,
  expandCurie,
  compilePattern,
  UriRouter,
  type WampApp,
  type WampOptions,
  type WampProtocol,
  type WampSession,
  type WampMessageContext,
  type CallContext as WampCallContext,
  type ProcedureHandler,
  type TopicContext,
  type PublishContext,
  type TopicHandler,
  type WampClient,
  type WampClientOptions,
  type EventCallback,
  type CurieRule,
  type UriPattern,
} from './apps/wamp/index.js';
export * from './protocol/index.js';
