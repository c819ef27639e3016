// The `session` cookie the auth modes check: shared by the bench servers of every runtime.

/** The value of the `session` cookie in a Cookie header, or null. */
export function sessionOf(cookie) {
  if (typeof cookie !== 'string') return null;
  for (const pair of cookie.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === 'session') return pair.slice(eq + 1).trim();
  }
  return null;
}
