// The ceiling: node bench/servers/raw-echo.mjs PORT [echo|fanout]
// A node:net server that answers the HTTP upgrade with a correct 101, then moves
// bytes and parses nothing, so what it sends are the client's own masked frames;
// the load generator counts them by that size.
//   echo (default): writes back every chunk it reads.
//   fanout: writes every chunk read from any connection to every connection past
//     its handshake, the sender included: the ceiling of moving bytes to many
//     sockets in Node. It ignores backpressure there: the benchmark publishes one
//     message at a time, so at most one frame waits per socket.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const port = Number(process.argv[2]);
const mode = process.argv[3] ?? 'echo';
if (mode !== 'echo' && mode !== 'fanout') {
  console.error(`raw-echo: unknown mode "${mode}" (echo or fanout)`);
  process.exit(2);
}
/** fanout: every socket past its handshake. */
const open = new Set();

function broadcast(chunk) {
  for (const socket of open) socket.write(chunk);
}

function onSocket(socket) {
  let head = '';
  const echo = (chunk) => {
    if (!socket.write(chunk)) {
      socket.pause();
      socket.once('drain', () => socket.resume());
    }
  };
  const onData = mode === 'echo' ? echo : broadcast;
  const handshake = (chunk) => {
    head += chunk.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 16384) socket.destroy();
      return;
    }
    const key = /\r\nsec-websocket-key:[ \t]*([^\r\n]*?)[ \t]*\r\n/i.exec(head.slice(0, end + 2))?.[1];
    if (key === undefined) {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.off('data', handshake);
    socket.on('data', onData);
    if (mode === 'fanout') {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
    }
    const rest = chunk.subarray(chunk.length - (head.length - end - 4));
    head = '';
    if (rest.length > 0) onData(rest);
  };
  socket.on('data', handshake);
  socket.on('error', () => {});
}

const server = createServer({ noDelay: true }, onSocket);
server.listen({ host: '127.0.0.1', port, backlog: 511 }, () => console.log('ready'));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
