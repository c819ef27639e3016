// The ceiling: node bench/servers/raw-echo.mjs PORT
// A node:net server that answers the HTTP upgrade with a correct 101, then writes
// back every chunk it reads. It moves bytes and parses nothing, so what it echoes
// are the client's own masked frames; the load generator counts them by that size.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function onSocket(socket) {
  let head = '';
  const echo = (chunk) => {
    if (!socket.write(chunk)) {
      socket.pause();
      socket.once('drain', () => socket.resume());
    }
  };
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
    socket.on('data', echo);
    const rest = chunk.subarray(chunk.length - (head.length - end - 4));
    head = '';
    if (rest.length > 0) echo(rest);
  };
  socket.on('data', handshake);
  socket.on('error', () => {});
}

const port = Number(process.argv[2]);
const server = createServer({ noDelay: true }, onSocket);
server.listen({ host: '127.0.0.1', port, backlog: 511 }, () => console.log('ready'));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
