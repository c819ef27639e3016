// Echo server: every message goes back to its sender, text as text, binary as binary.
// Run: npm run build && node dist/examples/echo.js [port]
import { serve } from '../lib/index.js';

const port = Number(process.argv[2] ?? 8080);
const server = await serve((conn, message) => conn.send(message), '127.0.0.1', port);
console.log(`echo server on ${server.url}`);
process.once('SIGINT', () => void server.close());
process.once('SIGTERM', () => void server.close());
