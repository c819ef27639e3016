// A small app whose WebSocket side examples/rooms-app.test.ts tests with resound/testing:
// rooms at /rooms/:room, joined with a bearer token, text only.
// Imported as a user's code would import resound: by the package name.
import { reject, Server } from 'resound';

export interface Member {
  name: string;
}

/** Stands for the app's session store. */
const TOKENS = new Map([
  ['t-alice', 'alice'],
  ['t-bob', 'bob'],
]);

/** The app's WebSocket server; listen, attach it to an HTTP server, or hand it to testClient(). */
export function createApp(): Server<Member> {
  return new Server<Member>(null, { maxPayload: 4096 }).route<Member>(
    '/rooms/:room',
    {
      onOpen(conn) {
        const room = conn.params['room']!;
        conn.subscribe(room);
        return conn.send(`welcome ${conn.data.name} to ${room}`);
      },
      onMessage(conn, message) {
        if (typeof message !== 'string') return conn.close(1003, 'text only');
        conn.publish(conn.params['room']!, `${conn.data.name}: ${message}`);
      },
    },
    {
      authorize({ request }) {
        const token = request.headers['authorization']?.replace(/^Bearer /, '') ?? '';
        const name = TOKENS.get(token);
        return name === undefined ? reject(401, 'unknown token', [['WWW-Authenticate', 'Bearer']]) : { name };
      },
    },
  );
}
