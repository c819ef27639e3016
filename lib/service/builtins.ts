/**
 * The handlers a config (or `resound echo` / `resound room`) names instead
 * of a module: `echo` and `room`.
 */
import type { WSConnection } from '../connection.js';
import type { Handler } from '../server/serve.js';

/** Text back as text, binary as binary. */
export const echoHandler: Handler = (conn, message) => void conn.send(message);

/**
 * Everyone in a room hears whatever one says, the speaker too. The room is
 * `topicOf(conn)`: one fixed room for `resound room`, the request path for a
 * service route (so `/rooms/:room` gives one room per name).
 */
export function roomHandler(topicOf: (conn: WSConnection) => string): Handler {
  return {
    onOpen(conn) {
      conn.subscribe(topicOf(conn));
    },
    onMessage(conn, message) {
      // publish() skips the sender, which hears itself through its own send.
      conn.publish(topicOf(conn), message);
      void conn.send(message);
    },
  };
}

export const BUILTIN_NAMES = ['echo', 'room'] as const;
export type BuiltinName = (typeof BUILTIN_NAMES)[number];

/** A fresh handler for a built-in name. */
export function builtinHandler(name: BuiltinName): Handler {
  return name === 'echo' ? echoHandler : roomHandler((conn) => conn.request.path);
}
