/**
 * Module hooks (node:module register) for redis-missing-child.ts: the
 * `redis` and `ioredis` packages cannot be found, as in an application that
 * installed neither. Everything else resolves as usual.
 *
 * With RESOUND_HIDE_REDIS=bare, only the bare names are hidden (`import('redis')`
 * beside resound fails), not the files: as when resound is installed
 * somewhere else than the application that has the library.
 */
type Next = (specifier: string, context: unknown) => Promise<unknown>;

const HIDDEN =
  process.env['RESOUND_HIDE_REDIS'] === 'bare' ? /^(?:redis|ioredis)(?:\/|$)/ : /^(?:redis|ioredis)(?:\/|$)|\/node_modules\/(?:redis|ioredis|@redis)\//;

export async function resolve(specifier: string, context: unknown, next: Next): Promise<unknown> {
  if (HIDDEN.test(specifier)) {
    throw Object.assign(new Error(`Cannot find package '${specifier}' (hidden by the test's module hooks)`), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return next(specifier, context);
}
