// The protocol core on its own: bytes in, events and bytes out, no sockets.
// Run: npm run build && node dist/examples/sans-io.js
import { isEof, ServerProtocol } from '../lib/index.js';

const protocol = new ServerProtocol({ maxPayload: 1024 });
protocol.receiveData(
  Buffer.from(
    'GET /demo HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  ),
);
for (const event of protocol.eventsReceived()) {
  if (event.type === 'request') protocol.sendResponse(protocol.accept(event.request));
}

// A masked text frame "Hi" as a client would send it.
const mask = [0x11, 0x22, 0x33, 0x44];
const payload = Buffer.from('Hi').map((byte, i) => byte ^ mask[i % 4]!);
protocol.receiveData(Buffer.from([0x81, 0x80 | payload.length, ...mask, ...payload]));

for (const event of protocol.eventsReceived()) {
  if (event.type === 'message') {
    console.log('received:', event.data);
    protocol.send(event.data);
  }
}
for (const chunk of protocol.dataToSend()) {
  const bytes = Buffer.from(chunk);
  if (isEof(chunk)) console.log('<close TCP>');
  else if (bytes.subarray(0, 5).toString('latin1') === 'HTTP/') console.log(bytes.toString('latin1').trimEnd());
  else console.log('frame:', bytes.toString('hex'));
}
console.log('state:', protocol.state === 1 ? 'OPEN' : protocol.state);
