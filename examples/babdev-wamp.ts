// A BabDev-style WAMP v1 application (BabDev websocket-server's message flow on resound):
// blocked IP addresses, allowed origins, the web login read from a session cookie at the
// handshake, keepalive pings, RPC routed by URI, a pub/sub topic per room, and
// open/close/error events. See docs/wamp.md.
//
// Run: npm run build && node dist/examples/babdev-wamp.js [port]
// Environment: WAMP_BLOCKED (comma-separated addresses or CIDR ranges, default 203.0.113.0/24),
// WAMP_ORIGINS (comma-separated, default http://localhost:8080,https://app.example.com).
import { allowOrigins, blockAddresses, reject, Server, speak, wamp, WampError } from '../lib/index.js';

/** What authorize puts on conn.data: the user of the web login. */
interface Login {
  user: string;
  admin: boolean;
}

// The web front end's session store, as the WebSocket server reads it (BabDev's InitializeSession).
const webSessions = new Map<string, Login>([
  ['sess-alice', { user: 'alice', admin: true }],
  ['sess-bob', { user: 'bob', admin: false }],
]);

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return decodeURIComponent(value.join('='));
  }
  return undefined;
}

const list = (value: string | undefined, fallback: string[]): string[] =>
  value === undefined ? fallback : value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);

const API = 'http://resound.example/';

const app = wamp<Login>(
  {
    procedures: {
      [`${API}rpc#whoami`]: (_args, { conn, session }) => ({ user: conn.data.user, session: session.id }),
      [`${API}rpc#add`]: (args) => {
        if (!args.every((n) => typeof n === 'number')) throw new WampError(`${API}error#invalid-argument`, 'add takes numbers');
        return (args as number[]).reduce((a, b) => a + b, 0);
      },
      [`${API}rpc#slow`]: async (args) => {
        await new Promise((resolve) => setTimeout(resolve, Math.min(Number(args[0]) || 0, 5000)));
        return 'done';
      },
      [`${API}users/{name}#profile`]: (_args, { params }) => {
        const found = [...webSessions.values()].find((login) => login.user === params['name']);
        if (found === undefined) throw new WampError(`${API}error#no-such-user`, `no user ${params['name']}`, { name: params['name'] });
        return found;
      },
    },
    topics: {
      [`${API}chat/{room}`]: {
        // Only admins may listen to the admin room.
        subscribe: ({ conn, params }) => params['room'] !== 'admin' || conn.data.admin,
        // Every chat event says who sent it, whatever the client claimed.
        publish: (ctx) => {
          if (typeof ctx.event !== 'string' || ctx.event.length > 1000) return false;
          ctx.event = { from: ctx.conn.data.user, text: ctx.event };
          return true;
        },
      },
    },
  },
  {
    serverIdent: 'resound-babdev-wamp/1',
    onOpen: (conn, session) => console.log(`open ${session.id} ${conn.data.user} from ${conn.remoteAddress}`),
    onClose: (conn, code, _reason, session) => console.log(`close ${session.id} ${conn.data.user} ${code}`),
    onError: (conn, error) => console.error(`error ${conn.data.user}: ${error.message}`),
  },
);

const server = new Server<Login>(null, {
  pingInterval: 10_000, // keepalive: ping a connection quiet for 10 s
  pingTimeout: 10_000,
}).route(
  '/wamp',
  ...speak<Login>([app], {
    policies: [
      blockAddresses(list(process.env['WAMP_BLOCKED'], ['203.0.113.0/24'])),
      // Browsers send Origin; scripts and servers usually do not, and are let through.
      allowOrigins(list(process.env['WAMP_ORIGINS'], ['http://localhost:8080', 'https://app.example.com']), { allowMissing: true }),
    ],
    authorize({ request }) {
      const login = webSessions.get(cookie(request.headers['cookie'], 'session') ?? '');
      return login ?? reject(401, 'log in on the web site first');
    },
  }),
);

await server.listen('127.0.0.1', Number(process.argv[2] ?? 8080));
console.log(`BabDev-style WAMP v1 server on ${server.url}/wamp`);
const stop = (): void => void server.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
