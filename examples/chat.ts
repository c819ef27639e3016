// Chat room on /chat: each text message is sent to everyone connected.
// Run: npm run build && node dist/examples/chat.js [port]
import { serve, type WSConnection } from '../lib/index.js';

const port = Number(process.argv[2] ?? 8080);
const members = new Set<WSConnection>();

const server = await serve(
  {
    onOpen(conn) {
      const name = conn.request.query.get('name') ?? `guest-${conn.remotePort}`;
      conn.attributes.set('name', name);
      members.add(conn);
      broadcast(`* ${name} joined`);
    },
    onMessage(conn, message) {
      if (typeof message !== 'string') {
        conn.close(1003, 'this room speaks text');
        return;
      }
      broadcast(`${String(conn.attributes.get('name'))}: ${message}`);
    },
    onClose(conn) {
      members.delete(conn);
      broadcast(`* ${String(conn.attributes.get('name'))} left`);
    },
    onError(conn, error) {
      console.error(`${conn.remoteAddress}: ${error.message}`);
    },
  },
  '127.0.0.1',
  port,
  { path: '/chat', maxPayload: 64 * 1024 },
);

function broadcast(line: string): void {
  for (const member of members) if (member.state === 'OPEN') member.sendText(line);
}

console.log(`chat on ${server.url}/chat?name=alice`);
process.once('SIGINT', () => void server.close());
process.once('SIGTERM', () => void server.close());
