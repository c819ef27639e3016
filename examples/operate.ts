// A server meant to run unattended: keepalive finds peers that vanished,
// an idle timeout closes connections nobody uses, every connection is logged,
// and Prometheus can scrape /metrics on the same port as the app.
// Run: npm run build && node dist/examples/operate.js [port]
import { createServer } from 'node:http';
import { attach, lineLogger } from '../lib/index.js';

const port = Number(process.argv[2] ?? 8080);
const http = createServer((_req, res) => res.end('the app\n'));
const server = attach(http, (conn, message) => conn.send(message), {
  pingInterval: 20_000, // ping a peer that sent nothing for 20 s (the default)
  pingTimeout: 20_000, // and drop it if nothing comes back within 20 s (the default)
  idleTimeout: 5 * 60_000, // close with 1001 after 5 minutes without a message
  logger: lineLogger('info'), // one line per open, close and refusal, on stderr
  metricsPath: '/metrics', // Prometheus text of server.stats()
});
http.listen(port, '127.0.0.1', () => {
  const address = http.address() as { port: number };
  console.log(`ws://127.0.0.1:${address.port} (metrics: http://127.0.0.1:${address.port}/metrics)`);
});
const stop = (): void => {
  void server.close().then(() => http.close());
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
