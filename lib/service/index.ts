/** resound/service: run a WebSocket service from a config file (`resound serve FILE`) from code. */
export { checkConfig, runService, startService, Service, type ServiceOptions, type ReloadTrigger } from './run.js';
export { ConfigError, type Problem } from './checker.js';
export type { ServiceConfig, RouteConfig } from './config.js';
