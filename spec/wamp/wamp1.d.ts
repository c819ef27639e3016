/** The npm package wamp1 (CommonJS, no types of its own): what the specs use of it. */
declare module 'wamp1' {
  import { EventEmitter } from 'node:events';
  interface Welcome {
    sessionId: string;
    version: number;
    server: string;
  }
  interface Socket {
    on(event: 'message', listener: (data: string) => void): unknown;
    send(data: string): void;
  }
  class Wamp extends EventEmitter {
    constructor(socket: string | Socket, options?: { omitSubscribe?: boolean } | ((welcome: Welcome) => void), welcome?: (welcome: Welcome) => void);
    sessionId: string | undefined;
    prefix(prefix: string, uri: string): void;
    call(uri: string, ...argsAndCallback: unknown[]): void;
    subscribe(uri: string, callback: (event: unknown) => void): void;
    unsubscribe(uri: string, callback?: (event: unknown) => void): void;
    publish(uri: string, event: unknown, excludeMeOrExclude?: boolean | string[], eligible?: string[]): void;
  }
  export = Wamp;
}
