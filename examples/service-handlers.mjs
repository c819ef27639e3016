// Handler modules for examples/service.json (`resound serve examples/service.json`).
// A route's "handler": "./service-handlers.mjs" takes the default export;
// "export": "counter" takes the named one. A handler is what serve() takes:
// a function (conn, message) or an object of callbacks.

/** Every text message comes back in capitals; binary comes back as it was. */
export default (conn, message) => conn.send(typeof message === 'string' ? message.toUpperCase() : message);

/** Each connection counts its messages and answers with the count so far. */
export const counter = {
  onOpen(conn) {
    conn.attributes.set('count', 0);
  },
  onMessage(conn) {
    const count = conn.attributes.get('count') + 1;
    conn.attributes.set('count', count);
    return conn.sendText(String(count));
  },
};
