// Resonance's WebSocket server, rebuilt: WebSockets on the HTTP app's own port
// (connections are upgraded HTTP requests), selecting a subprotocol is
// mandatory (a client that offers none of ours is refused with 400 naming
// them), and the `jsonrpc` protocol serves a validated set of method names,
// like Resonance's JsonRPCMethod enum and JsonRPCMethodValidator.
// Run: npm run build && node dist/examples/resonance.js [port]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { attach, jsonRpc, method, speak, type MethodSpec } from '../lib/index.js';

const port = Number(process.argv[2] ?? 8080);

/** The method names this app answers (Resonance's `enum JsonRPCMethod: string { case Echo = 'echo'; }`). */
const JsonRpcMethod = ['echo'] as const;
type JsonRpcMethodName = (typeof JsonRpcMethod)[number];

// One entry per name, checked by the compiler; params are checked before the handler runs (-32602 otherwise).
const methods: Record<JsonRpcMethodName, MethodSpec<any>> = {
  echo: method({ message: 'string' }, ({ message }) => message),
};

const rpc = jsonRpc(methods, {
  onOpen: (conn) => console.log(`jsonrpc connection from ${conn.remoteAddress}`),
});

const http = createServer((req, res) => {
  if (req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Resonance-style app</title><p>HTTP and WebSockets share this port: connect with the <code>jsonrpc</code> subprotocol.</p>\n');
  } else if (req.url === '/status') {
    const { connections, handshakes } = ws.stats();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ subprotocols: [rpc.name], methods: rpc.engine.names(), connections, refused: handshakes.refused }) + '\n');
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  }
});

// speak() offers the subprotocols, requires one, and hands each connection to the one it agreed.
const ws = attach(http, ...speak([rpc]));

http.listen(port, '127.0.0.1', () => {
  const { port: actual } = http.address() as AddressInfo;
  console.log(`http://127.0.0.1:${actual}/ and ws://127.0.0.1:${actual}/ (subprotocol jsonrpc required)`);
});

const stop = (): void => {
  void ws.close().then(() => http.close());
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
