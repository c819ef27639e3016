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
export * from './protocol/index.js';
