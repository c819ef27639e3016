/**
 * A Redis broker from a URL, for the command line (`resound room --redis
 * redis://127.0.0.1:6379`) and for applications that let resound make the
 * client: the client library is loaded at run time from the application's
 * node_modules (`redis`, or else `ioredis`); resound depends on neither.
 *
 * Unlike redisBroker(client), the broker made here owns its client: it
 * connects it, handles its errors (they set the broker's state), and quits
 * it when the server closes.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RedisBroker, type IORedisClient, type NodeRedisClient, type RedisBrokerOptions } from './redis.js';

/** The client libraries redisBrokerFromUrl knows, by npm package name. */
export type RedisLibrary = 'redis' | 'ioredis';

export interface RedisUrlOptions extends Omit<RedisBrokerOptions, 'ownsClient'> {
  /** Which client library to load. Default: `redis` when installed, else `ioredis`. */
  library?: RedisLibrary;
}

type Module = Record<string, unknown>;

/**
 * A broker on a new Redis client for `url` (redis:// or rediss://, with the
 * user, password and database number as the libraries read them). Rejects
 * with an error saying what to install when neither library is found.
 */
export async function redisBrokerFromUrl(url: string, options: RedisUrlOptions = {}): Promise<RedisBroker> {
  checkUrl(url);
  const { library, ...brokerOptions } = options;
  const libraries: readonly RedisLibrary[] = library !== undefined ? [library] : ['redis', 'ioredis'];
  const missing: unknown[] = [];
  for (const name of libraries) {
    const loaded = await load(name);
    if ('missing' in loaded) {
      missing.push(loaded.missing);
      continue;
    }
    const client = name === 'redis' ? nodeRedisClient(loaded.module, url) : ioredisClient(loaded.module, url);
    return new RedisBroker(client, { ...brokerOptions, ownsClient: true });
  }
  const wanted = library ?? 'redis';
  const other = library === undefined ? ' (or `npm install ioredis`)' : '';
  throw new Error(`resound needs a Redis client library to use Redis: run \`npm install ${wanted}\`${other} in your application (${libraries.join(' and ')} not found)`, {
    cause: missing[0],
  });
}

function checkUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`not a Redis URL: ${JSON.stringify(url)} (expected redis://host:port)`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new TypeError(`not a Redis URL: ${JSON.stringify(url)} (expected redis:// or rediss://)`);
}

function notFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/**
 * `name` as resound itself would import it (the application's node_modules
 * when resound is installed in it), else from the current directory's
 * (resound run from elsewhere, as with npx).
 */
async function load(name: RedisLibrary): Promise<{ module: Module } | { missing: unknown }> {
  try {
    return { module: (await import(name)) as Module };
  } catch (error) {
    if (!notFound(error)) throw error;
  }
  try {
    const path = createRequire(join(process.cwd(), 'package.json')).resolve(name);
    return { module: (await import(pathToFileURL(path).href)) as Module };
  } catch (error) {
    if (!notFound(error)) throw error;
    return { missing: error };
  }
}

function nodeRedisClient(module: Module, url: string): NodeRedisClient {
  type CreateClient = (options: { url: string; disableOfflineQueue: boolean }) => NodeRedisClient;
  const createClient = (module['createClient'] ?? (module['default'] as Module | undefined)?.['createClient']) as CreateClient | undefined;
  if (typeof createClient !== 'function') throw new Error('the `redis` package found has no createClient(): resound needs redis v4 or later');
  // Nothing queued while disconnected: what cannot go out now is not sent late (at most once).
  return createClient({ url, disableOfflineQueue: true });
}

function ioredisClient(module: Module, url: string): IORedisClient {
  type Options = { lazyConnect: boolean; enableOfflineQueue: boolean; autoResendUnfulfilledCommands: boolean };
  type RedisConstructor = new (url: string, options: Options) => IORedisClient;
  const Redis = (typeof module['default'] === 'function' ? module['default'] : module['Redis']) as RedisConstructor | undefined;
  if (typeof Redis !== 'function') throw new Error('the `ioredis` package found exports no Redis class');
  // Connected by the broker once it has its error listener. Nothing queued while disconnected, and a
  // publish whose reply was lost with the connection is not sent again after the reconnect (at most once).
  return new Redis(url, { lazyConnect: true, enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
}
