// Chat rooms on /chat: each text message goes to everyone in the sender's room.
// Run: npm run build && node dist/examples/chat.js [port]
// Join with ws://127.0.0.1:PORT/chat?name=alice&room=lobby (room defaults to lobby).
import { serve, type WSConnection } from '../lib/index.js';

const port = Number(process.argv[2] ?? 8080);

/** Rooms are topics: a line is framed once and queued on every member. */
function roomOf(conn: WSConnection): string {
  return `room:${conn.request.query.get('room') ?? 'lobby'}`;
}

function nameOf(conn: WSConnection): string {
  return String(conn.attributes.get('name'));
}

const server = await serve(
  {
    onOpen(conn) {
      conn.attributes.set('name', conn.request.query.get('name') ?? `guest-${conn.remotePort}`);
      conn.subscribe(roomOf(conn));
      server.publish(roomOf(conn), `* ${nameOf(conn)} joined`);
    },
    onMessage(conn, message) {
      if (typeof message !== 'string') {
        conn.close(1003, 'this room speaks text');
        return;
      }
      server.publish(roomOf(conn), `${nameOf(conn)}: ${message}`);
    },
    onClose(conn) {
      // The closed connection has already left its room.
      server.publish(roomOf(conn), `* ${nameOf(conn)} left`);
    },
    onError(conn, error) {
      console.error(`${conn.remoteAddress}: ${error.message}`);
    },
  },
  '127.0.0.1',
  port,
  { path: '/chat', maxPayload: 64 * 1024 },
);

console.log(`chat on ${server.url}/chat?name=alice&room=lobby`);
process.once('SIGINT', () => void server.close());
process.once('SIGTERM', () => void server.close());
