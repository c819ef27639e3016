/**
 * The built-in handshake policies (lib/server/policies.ts), on hand-built
 * UpgradeRequests: allowed origins (exact, default ports, case, wildcards,
 * `*`, a missing header), IPv4 and IPv6 address lists (CIDR edges,
 * IPv4-mapped addresses, entries that do not parse), and the client address
 * behind trusted proxies (X-Forwarded-For chains, spoofed and malformed
 * elements).
 */
import assert from 'node:assert/strict';
import { BlockList, isIP } from 'node:net';
import { test } from 'node:test';
import { Rejection, type UpgradeRequest } from '../../lib/server/guard.js';
import type { HandshakeRequest } from '../../lib/protocol/handshake.js';
import { addressMatcher, allowAddresses, allowOrigins, blockAddresses, clientAddressOf, trustProxies } from '../../lib/server/policies.js';

function upgrade(headers: Record<string, string>, clientAddress = '203.0.113.5', remoteAddress = clientAddress): UpgradeRequest {
  const request = {
    method: 'GET',
    target: '/',
    path: '/',
    query: new URLSearchParams(),
    httpVersion: '1.1',
    headers,
    rawHeaders: [],
    subprotocols: [],
  } as HandshakeRequest;
  return { request, params: {}, remoteAddress, clientAddress, secure: false };
}

function withOrigin(origin: string): UpgradeRequest {
  return upgrade({ host: 'ws.example.com', origin });
}

function refused(outcome: unknown, what: string): Rejection {
  assert.ok(outcome instanceof Rejection, `${what} should be refused`);
  assert.equal(outcome.status, 403, what);
  return outcome;
}

function admitted(outcome: unknown, what: string): void {
  assert.equal(outcome, undefined, `${what} should be let through, got ${outcome instanceof Rejection ? `${outcome.status} ${outcome.body}` : String(outcome)}`);
}

/** Asserts that making something throws a TypeError whose message names `entry`. */
function throwsNaming(make: () => unknown, entry: string): void {
  assert.throws(make, (error: unknown) => {
    assert.ok(error instanceof TypeError, `${JSON.stringify(entry)}: ${String(error)}`);
    assert.ok(error.message.includes(JSON.stringify(entry)), `the message should name ${JSON.stringify(entry)}: ${error.message}`);
    return true;
  });
}

// ---------------------------------------------------------------------------
// allowOrigins
// ---------------------------------------------------------------------------

test('allowOrigins: a listed origin is let through, another is refused with 403 naming it', () => {
  const policy = allowOrigins(['https://app.example.com', 'http://localhost:3000']);
  admitted(policy(withOrigin('https://app.example.com')), 'the listed origin');
  admitted(policy(withOrigin('http://localhost:3000')), 'the second listed origin');
  const rejection = refused(policy(withOrigin('https://evil.example.net')), 'an unlisted origin');
  assert.ok(rejection.body.includes('https://evil.example.net'), rejection.body);
  refused(policy(withOrigin('https://other.example.com')), 'a sibling host');
  refused(policy(withOrigin('https://app.example.com.evil.net')), 'a host with the listed one as a prefix');
  refused(policy(withOrigin('https://example.com')), 'the parent domain');
  refused(policy(withOrigin('http://localhost:3001')), 'another port');
  refused(policy(withOrigin('http://localhost')), 'no port where one is listed');
});

test('allowOrigins: scheme and host compare case-insensitively', () => {
  const policy = allowOrigins(['https://App.Example.COM']);
  admitted(policy(withOrigin('https://app.example.com')), 'lower case');
  admitted(policy(withOrigin('HTTPS://APP.EXAMPLE.COM')), 'upper case');
  admitted(policy(withOrigin('Https://aPP.example.Com')), 'mixed case');
  refused(policy(withOrigin('http://app.example.com')), 'another scheme');
  refused(policy(withOrigin('wss://app.example.com')), 'wss is not https');
});

test('allowOrigins: a default port is the same as none, both ways; other ports are not', () => {
  const bare = allowOrigins(['https://x.example', 'http://y.example']);
  admitted(bare(withOrigin('https://x.example:443')), 'https :443 against a bare entry');
  admitted(bare(withOrigin('http://y.example:80')), 'http :80 against a bare entry');
  refused(bare(withOrigin('https://x.example:80')), 'https :80 is not the default');
  refused(bare(withOrigin('http://y.example:443')), 'http :443 is not the default');
  refused(bare(withOrigin('https://x.example:8443')), 'another port');

  const ported = allowOrigins(['https://x.example:443', 'http://y.example:80', 'https://z.example:8443']);
  admitted(ported(withOrigin('https://x.example')), 'a bare https origin against :443');
  admitted(ported(withOrigin('http://y.example')), 'a bare http origin against :80');
  admitted(ported(withOrigin('https://z.example:8443')), 'the listed non-default port');
  refused(ported(withOrigin('https://z.example')), 'the default port against :8443');
});

test('allowOrigins: wildcards take one or more labels before the domain, not the domain itself', () => {
  const policy = allowOrigins(['https://*.example.com']);
  admitted(policy(withOrigin('https://a.example.com')), 'one label');
  admitted(policy(withOrigin('https://a.b.example.com')), 'two labels');
  admitted(policy(withOrigin('https://x-1.deep.er.example.com')), 'three labels');
  admitted(policy(withOrigin('HTTPS://A.EXAMPLE.COM:443')), 'upper case and the default port');
  refused(policy(withOrigin('https://example.com')), 'the domain itself');
  refused(policy(withOrigin('https://evilexample.com')), 'a host that merely ends with the same letters');
  refused(policy(withOrigin('https://a.example.com.evil.net')), 'the domain as a prefix');
  refused(policy(withOrigin('https://.example.com')), 'an empty label');
  refused(policy(withOrigin('https://a..example.com')), 'an empty label in the middle');
  refused(policy(withOrigin('http://a.example.com')), 'another scheme');
  refused(policy(withOrigin('https://a.example.com:8443')), 'another port');

  const ported = allowOrigins(['http://*.dev.test:8080']);
  admitted(ported(withOrigin('http://a.dev.test:8080')), 'the wildcard with its port');
  refused(ported(withOrigin('http://a.dev.test')), 'the wildcard without its port');
});

test('allowOrigins: "*" takes any Origin header, but still wants one unless allowMissing', () => {
  const policy = allowOrigins(['*']);
  for (const origin of ['https://anything.example', 'http://127.0.0.1:9', 'null', 'not an origin']) {
    admitted(policy(withOrigin(origin)), origin);
  }
  refused(policy(upgrade({ host: 'x' })), 'no Origin header');
  admitted(allowOrigins(['*'], { allowMissing: true })(upgrade({ host: 'x' })), 'no Origin header with allowMissing');
});

test('allowOrigins: a missing Origin header is refused unless allowMissing, which lets nothing else in', () => {
  const strict = allowOrigins(['https://app.example.com']);
  const rejection = refused(strict(upgrade({ host: 'x' })), 'no Origin header');
  assert.match(rejection.body, /origin/i);
  const lenient = allowOrigins(['https://app.example.com'], { allowMissing: true });
  admitted(lenient(upgrade({ host: 'x' })), 'no Origin header with allowMissing');
  admitted(lenient(withOrigin('https://app.example.com')), 'the listed origin with allowMissing');
  refused(lenient(withOrigin('https://evil.example.net')), 'an unlisted origin with allowMissing');
  refused(allowOrigins([], { allowMissing: true })(withOrigin('https://app.example.com')), 'any origin against an empty list');
});

test('allowOrigins: Origin headers that are not one serialized origin are refused', () => {
  const policy = allowOrigins(['https://app.example.com', 'https://*.example.org']);
  const malformed = [
    'null',
    '',
    'app.example.com',
    'https://app.example.com/path',
    'https://app.example.com?x=1',
    'https://app.example.com#x',
    'https://user@app.example.com',
    'https://evil.net\\@app.example.com',
    'https://app.example.com, https://app.example.com',
    'https://app.example.com https://evil.net',
    'https://app.example.com:99999',
    'https://a.example.org/',
    'https://app.exämple.com',
  ];
  for (const origin of malformed.slice(0, -2)) refused(policy(withOrigin(origin)), JSON.stringify(origin));
  // One trailing slash is tolerated (it names the same origin); non-ASCII hosts are not what browsers send.
  admitted(policy(withOrigin('https://a.example.org/')), 'a trailing slash');
  refused(policy(withOrigin('https://app.exämple.com')), 'a non-ASCII host');
  const long = `https://${'a'.repeat(5000)}.example.org`;
  const rejection = refused(policy(withOrigin(long)), 'a very long origin');
  assert.ok(rejection.body.length < 300, 'the body stays short');
  const controls = refused(policy(withOrigin('https://evil\u0001.net')), 'a control character');
  assert.ok(!controls.body.includes('\u0001'), 'the body holds no control character');
});

test('allowOrigins: an IDN entry matches the punycode a browser sends', () => {
  const policy = allowOrigins(['https://bücher.example', 'https://*.münchen.example']);
  admitted(policy(withOrigin('https://xn--bcher-kva.example')), 'the exact IDN host');
  admitted(policy(withOrigin('https://shop.xn--mnchen-3ya.example')), 'a host under the IDN wildcard');
  refused(policy(withOrigin('https://bucher.example')), 'the host without its umlaut');
  // The serialized origin is ASCII: a header with the host in Unicode is not one, whatever it would encode to.
  refused(policy(withOrigin('https://bücher.example')), 'the IDN host in Unicode');
});

test('allowOrigins: other schemes, IP hosts and IPv6 literals compare exactly too', () => {
  const policy = allowOrigins(['chrome-extension://abcdefghij', 'http://127.0.0.1:8080', 'http://[::1]:8080']);
  admitted(policy(withOrigin('chrome-extension://ABCDEFGHIJ')), 'an extension origin, case aside');
  admitted(policy(withOrigin('http://127.0.0.1:8080')), 'an IPv4 host');
  admitted(policy(withOrigin('http://[::1]:8080')), 'an IPv6 literal');
  admitted(policy(withOrigin('http://[0:0::1]:8080')), 'the same IPv6 literal written longer');
  refused(policy(withOrigin('chrome-extension://other')), 'another extension');
  refused(policy(withOrigin('http://127.0.0.2:8080')), 'another IPv4 host');
});

test('allowOrigins: entries that are not origins throw a TypeError naming them', () => {
  const bad = [
    'example.com',
    'https://',
    'https://a.example.com/path',
    'https://a.example.com?q',
    'https://user@a.example.com',
    'https://*example.com',
    'https://a.*.example.com',
    'https://*.*.example.com',
    'https://*',
    'https://*.',
    'https://*.[::1]',
    '*.example.com',
    'https://a b.com',
    '',
  ];
  for (const entry of bad) throwsNaming(() => allowOrigins([entry]), entry);
  // "null" gets a message of its own: any sandboxed or file: document sends it.
  assert.throws(() => allowOrigins(['null']), (error: unknown) => error instanceof TypeError && /sandboxed/.test(error.message));
  assert.throws(() => allowOrigins([42 as unknown as string]), TypeError);
  assert.throws(() => allowOrigins('https://a.example.com' as unknown as string[]), TypeError);
  // Surrounding whitespace (a list split from an environment variable) is fine.
  admitted(allowOrigins([' https://a.example.com '])(withOrigin('https://a.example.com')), 'a trimmed entry');
});

// ---------------------------------------------------------------------------
// Address lists
// ---------------------------------------------------------------------------

test('addresses are read as IPv4 and IPv6 exactly as node:net reads them', () => {
  const anything = addressMatcher(['0.0.0.0/0', '::/0']);
  const samples = [
    '0.0.0.0', '255.255.255.255', '1.2.3.4', '10.0.0.1', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.',
    '01.2.3.4', '1.2.3.04', '1.2.3.4 ', ' 1.2.3.4', 'a.b.c.d', '1.2.3.-4', '+1.2.3.4', '1e2.1.1.1', '0x7f.0.0.1',
    '::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1::8', '1:2:3:4:5:6:7:8:9',
    '1::2::3', ':1::', '::1:', '1:', ':1', ':::', '1:::2', 'fffff::', '12345::', 'g::', 'FFFF:Abcd::', '0000:0000::0001', '00000::1',
    '::ffff:1.2.3.4', '::FFFF:1.2.3.4', '::ffff:a01:203', '::1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4',
    '::1.2.3.4:5', '::ffff:1.2.3', '::ffff:01.2.3.4', '1.2.3.4::', 'fe80::1%eth0', 'fe80::1%25', '', ' ', 'localhost',
  ];
  for (const text of samples) assert.equal(anything(text), isIP(text) !== 0, JSON.stringify(text));
});

test('IPv4 ranges: boundaries just inside and just outside, /0, /1, /31 and /32', () => {
  const eight = addressMatcher(['10.0.0.0/8']);
  assert.equal(eight('10.0.0.0'), true);
  assert.equal(eight('10.255.255.255'), true);
  assert.equal(eight('10.128.7.1'), true);
  assert.equal(eight('9.255.255.255'), false);
  assert.equal(eight('11.0.0.0'), false);

  const single = addressMatcher(['192.168.1.7']);
  assert.equal(single('192.168.1.7'), true);
  assert.equal(single('192.168.1.6'), false);
  assert.equal(single('192.168.1.8'), false);
  const slash32 = addressMatcher(['192.168.1.7/32']);
  assert.equal(slash32('192.168.1.7'), true);
  assert.equal(slash32('192.168.1.8'), false);

  const slash31 = addressMatcher(['172.16.0.4/31']);
  assert.deepEqual(['172.16.0.3', '172.16.0.4', '172.16.0.5', '172.16.0.6'].map(slash31), [false, true, true, false]);

  const upperHalf = addressMatcher(['128.0.0.0/1']);
  assert.equal(upperHalf('128.0.0.0'), true);
  assert.equal(upperHalf('255.255.255.255'), true);
  assert.equal(upperHalf('127.255.255.255'), false);

  const all = addressMatcher(['0.0.0.0/0']);
  assert.equal(all('0.0.0.0'), true);
  assert.equal(all('255.255.255.255'), true);
  assert.equal(all('::ffff:8.8.8.8'), true);
  assert.equal(all('::1'), false, 'an IPv4 /0 is every IPv4 address, no IPv6 one');
  assert.equal(all('2001:db8::1'), false);

  const odd = addressMatcher(['100.64.0.0/10']);
  assert.equal(odd('100.64.0.0'), true);
  assert.equal(odd('100.127.255.255'), true);
  assert.equal(odd('100.128.0.0'), false);
  assert.equal(odd('100.63.255.255'), false);
});

test('IPv4 ranges: host bits under the prefix are ignored', () => {
  const matches = addressMatcher(['192.168.1.77/24']);
  assert.equal(matches('192.168.1.0'), true);
  assert.equal(matches('192.168.1.255'), true);
  assert.equal(matches('192.168.2.0'), false);
  assert.equal(matches('192.168.0.255'), false);
});

test('IPv6 ranges: boundaries, /0, /128, prefixes across word boundaries, zones', () => {
  const doc = addressMatcher(['2001:db8::/32']);
  assert.equal(doc('2001:db8::'), true);
  assert.equal(doc('2001:DB8::1'), true);
  assert.equal(doc('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'), true);
  assert.equal(doc('2001:db7:ffff:ffff:ffff:ffff:ffff:ffff'), false);
  assert.equal(doc('2001:db9::'), false);

  const linkLocal = addressMatcher(['fe80::/10']);
  assert.equal(linkLocal('fe80::1'), true);
  assert.equal(linkLocal('febf:ffff::1'), true);
  assert.equal(linkLocal('fec0::'), false);
  assert.equal(linkLocal('fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), false);
  assert.equal(linkLocal('fe80::1%eth0'), true, 'a zone is ignored');
  assert.equal(linkLocal('fe80::1%'), false, 'an empty zone is not an address');

  const loopback = addressMatcher(['::1']);
  assert.equal(loopback('::1'), true);
  assert.equal(loopback('0:0:0:0:0:0:0:1'), true);
  assert.equal(loopback('::'), false);
  assert.equal(loopback('::2'), false);
  assert.equal(loopback('127.0.0.1'), false);
  const slash128 = addressMatcher(['2001:db8::8/128']);
  assert.equal(slash128('2001:db8::8'), true);
  assert.equal(slash128('2001:db8::9'), false);
  assert.equal(slash128('2001:db8::7'), false);

  const all = addressMatcher(['::/0']);
  assert.equal(all('::'), true);
  assert.equal(all('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), true);
  assert.equal(all('1.2.3.4'), false, 'an IPv6 /0 is every IPv6 address, no IPv4 one');
  assert.equal(all('::ffff:1.2.3.4'), false, 'not even written IPv4-mapped');

  const slash33 = addressMatcher(['2001:db8::/33']);
  assert.equal(slash33('2001:db8::'), true);
  assert.equal(slash33('2001:db8:7fff:ffff:ffff:ffff:ffff:ffff'), true);
  assert.equal(slash33('2001:db8:8000::'), false, 'the 33rd bit set');
  const upper33 = addressMatcher(['2001:db8:8000::/33']);
  assert.equal(upper33('2001:db8:8000::'), true);
  assert.equal(upper33('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'), true);
  assert.equal(upper33('2001:db8:7fff:ffff:ffff:ffff:ffff:ffff'), false);
  const slash65 = addressMatcher(['abcd:ef01:2345:6789:8000::/65']);
  assert.equal(slash65('abcd:ef01:2345:6789:8000::'), true);
  assert.equal(slash65('abcd:ef01:2345:6789:ffff:ffff:ffff:ffff'), true);
  assert.equal(slash65('abcd:ef01:2345:6789:7fff:ffff:ffff:ffff'), false);
  assert.equal(slash65('abcd:ef01:2345:678a:8000::'), false);
  const slash96 = addressMatcher(['2001:db8:1:2:3:4::/96']);
  assert.equal(slash96('2001:db8:1:2:3:4:ffff:ffff'), true);
  assert.equal(slash96('2001:db8:1:2:3:5::'), false);
  assert.equal(slash96('2001:db8:1:2:3:3:ffff:ffff'), false);
  const slash127 = addressMatcher(['1:2:3:4:5:6:7:0/127']);
  assert.deepEqual(['1:2:3:4:5:6:6:ffff', '1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:1', '1:2:3:4:5:6:7:2'].map(slash127), [false, true, true, false]);
});

test('IPv4-mapped IPv6 addresses match IPv4 entries, and IPv4-mapped entries match IPv4 addresses', () => {
  const v4 = addressMatcher(['10.0.0.0/8', '192.168.1.7']);
  assert.equal(v4('::ffff:10.1.2.3'), true);
  assert.equal(v4('::FFFF:10.1.2.3'), true);
  assert.equal(v4('::ffff:a01:203'), true, 'the mapped address in hex');
  assert.equal(v4('0:0:0:0:0:ffff:10.1.2.3'), true, 'written in full');
  assert.equal(v4('::ffff:192.168.1.7'), true);
  assert.equal(v4('::ffff:11.0.0.0'), false);
  assert.equal(v4('::ffff:192.168.1.8'), false);
  assert.equal(v4('::10.1.2.3'), false, 'IPv4-compatible (deprecated) is IPv6, not mapped');
  assert.equal(v4('64:ff9b::10.1.2.3'), false, 'NAT64 is IPv6');

  const mapped = addressMatcher(['::ffff:10.0.0.0/104', '::ffff:192.168.1.7']);
  assert.equal(mapped('10.200.0.1'), true);
  assert.equal(mapped('::ffff:10.200.0.1'), true);
  assert.equal(mapped('11.0.0.1'), false);
  assert.equal(mapped('192.168.1.7'), true);
  assert.equal(mapped('192.168.1.6'), false);

  const everyV4 = addressMatcher(['::ffff:0:0/96']);
  assert.equal(everyV4('1.2.3.4'), true);
  assert.equal(everyV4('255.255.255.255'), true);
  assert.equal(everyV4('::1'), false);

  // An IPv6 range shorter than /96 never matches IPv4 clients, even one that covers the mapped block.
  const wider = addressMatcher(['::ffff:0:0/95', '::/64']);
  assert.equal(wider('1.2.3.4'), false);
  assert.equal(wider('::ffff:1.2.3.4'), false);
  assert.equal(wider('::fffe:1.2.3.4'), true, 'the IPv6 half of ::ffff:0:0/95');
  assert.equal(wider('::1'), true);
});

test('address ranges agree with node:net BlockList on random IPv4 and IPv6 ranges', () => {
  let seed = 0x5eed1234;
  const random = (): number => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const word = (): number => Math.floor(random() * 2 ** 32);
  const v4Text = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  // Full form, the first group never 0 (so never IPv4-mapped).
  const v6Text = (words: number[]): string =>
    words.flatMap((w, i) => [i === 0 ? (w >>> 16) | 1 : w >>> 16, w & 0xffff]).map((g) => g.toString(16)).join(':');
  let inside = 0;
  for (let round = 0; round < 400; round++) {
    const prefix = Math.floor(random() * 33);
    const network = word();
    // Near the network: flip one bit anywhere, so both sides of the prefix come up.
    const address = (network ^ (2 ** Math.floor(random() * 32))) >>> 0;
    const reference = new BlockList();
    reference.addSubnet(v4Text(network), prefix, 'ipv4');
    const ours = addressMatcher([`${v4Text(network)}/${prefix}`]);
    for (const probe of [address, network]) {
      const expected = reference.check(v4Text(probe), 'ipv4');
      assert.equal(ours(v4Text(probe)), expected, `${v4Text(probe)} in ${v4Text(network)}/${prefix}`);
      if (expected) inside++;
    }
  }
  for (let round = 0; round < 400; round++) {
    const prefix = Math.floor(random() * 129);
    const network = [word(), word(), word(), word()];
    const flipped = Math.floor(random() * 128);
    const address = network.slice();
    address[flipped >>> 5] = (address[flipped >>> 5] ^ (2 ** (31 - (flipped & 31)))) >>> 0;
    if (flipped === 15) address[0] = (address[0] ^ 0x10000) >>> 0; // keep the first group odd
    const reference = new BlockList();
    reference.addSubnet(v6Text(network), prefix, 'ipv6');
    const ours = addressMatcher([`${v6Text(network)}/${prefix}`]);
    for (const probe of [address, network]) {
      const expected = reference.check(v6Text(probe), 'ipv6');
      assert.equal(ours(v6Text(probe)), expected, `${v6Text(probe)} in ${v6Text(network)}/${prefix}`);
      if (expected) inside++;
    }
  }
  assert.ok(inside > 400 && inside < 1600, `both outcomes came up (${inside} of 1600 inside)`);
});

test('address entries that do not parse throw a TypeError naming them', () => {
  const bad = [
    '10.0.0.0/33', '::/129', '10.0.0.256', '10.0.0', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/-1', '10.0.0.0/+8', '10.0.0.0/8/8',
    '10.0.0.0/1000', '/8', 'example.com', '1::2::3', '', '01.2.3.4', 'fe80::1%eth0', '10.0.0.0 /8', '2001:db8::/3 2', '::ffff:1.2.3.4/129',
  ];
  for (const entry of bad) {
    throwsNaming(() => allowAddresses([entry]), entry);
    throwsNaming(() => blockAddresses([entry]), entry);
    throwsNaming(() => trustProxies([entry]), entry);
    throwsNaming(() => addressMatcher([entry]), entry);
  }
  assert.throws(() => allowAddresses([10 as unknown as string]), TypeError);
  assert.throws(() => blockAddresses('10.0.0.0/8' as unknown as string[]), TypeError);
  assert.throws(() => allowAddresses(['10.0.0.0/8'], { address: 'peer' as 'remote' }), TypeError);
  // Surrounding whitespace is fine; an IPv4 entry written IPv4-mapped takes up to /128.
  assert.equal(addressMatcher([' 10.0.0.0/8 ', '::ffff:1.2.3.4/128'])('1.2.3.4'), true);
});

test('allowAddresses: listed clients are let through, others and unreadable addresses get 403', () => {
  const policy = allowAddresses(['10.0.0.0/8', '2001:db8::/32']);
  admitted(policy(upgrade({}, '10.9.8.7')), 'an IPv4 client in range');
  admitted(policy(upgrade({}, '::ffff:10.9.8.7')), 'the same client on a dual-stack socket');
  admitted(policy(upgrade({}, '2001:db8::42')), 'an IPv6 client in range');
  const rejection = refused(policy(upgrade({}, '11.0.0.1')), 'an IPv4 client out of range');
  assert.ok(rejection.body.includes('11.0.0.1'), rejection.body);
  refused(policy(upgrade({}, '2001:db9::1')), 'an IPv6 client out of range');
  refused(policy(upgrade({}, '')), 'an empty address');
  refused(policy(upgrade({}, 'not-an-address')), 'an unreadable address');
  refused(allowAddresses([])(upgrade({}, '10.0.0.1')), 'anyone against an empty list');
});

test('allowAddresses and blockAddresses check clientAddress, or remoteAddress when asked', () => {
  const behindProxy = upgrade({}, '198.51.100.7', '10.0.0.2');
  refused(allowAddresses(['10.0.0.0/8'])(behindProxy), 'the proxy is listed, the client is not');
  admitted(allowAddresses(['198.51.100.0/24'])(behindProxy), 'the client is listed');
  admitted(allowAddresses(['10.0.0.0/8'], { address: 'remote' })(behindProxy), 'the TCP peer is listed');
  refused(allowAddresses(['198.51.100.0/24'], { address: 'remote' })(behindProxy), 'the TCP peer is not listed');

  refused(blockAddresses(['198.51.100.7'])(behindProxy), 'the client is blocked');
  admitted(blockAddresses(['10.0.0.2'])(behindProxy), 'only the proxy is blocked');
  refused(blockAddresses(['10.0.0.2'], { address: 'remote' })(behindProxy), 'the TCP peer is blocked');
  admitted(blockAddresses(['198.51.100.7'], { address: 'client' })(upgrade({}, '198.51.100.8', '10.0.0.2')), 'another client');
  admitted(blockAddresses(['10.0.0.2'], { address: 'client' })(behindProxy), 'address: client is the default');
});

test('blockAddresses: listed clients get 403, others are let through, unreadable addresses are refused', () => {
  const policy = blockAddresses(['192.0.2.0/24', '::1', 'fe80::/10']);
  const rejection = refused(policy(upgrade({}, '192.0.2.200')), 'a blocked IPv4 client');
  assert.ok(rejection.body.includes('192.0.2.200'), rejection.body);
  refused(policy(upgrade({}, '::ffff:192.0.2.1')), 'a blocked client on a dual-stack socket');
  refused(policy(upgrade({}, '::1')), 'a blocked IPv6 client');
  refused(policy(upgrade({}, 'fe80::abcd%eth0')), 'a blocked link-local client with a zone');
  admitted(policy(upgrade({}, '192.0.3.0')), 'just past the blocked range');
  admitted(policy(upgrade({}, '192.0.1.255')), 'just before the blocked range');
  admitted(policy(upgrade({}, '::2')), 'another IPv6 client');
  admitted(policy(upgrade({}, '::ffff:203.0.113.1')), 'another client on a dual-stack socket');
  refused(policy(upgrade({}, '')), 'an empty address (fails closed)');
  admitted(blockAddresses([])(upgrade({}, '192.0.2.1')), 'anyone against an empty list');
});

// ---------------------------------------------------------------------------
// Trusted proxies
// ---------------------------------------------------------------------------

const PROXIES = ['10.0.0.0/8', '2001:db8:cafe::/48'];

test('trustProxies: a peer that is not a trusted proxy is the client, X-Forwarded-For ignored', () => {
  const clientOf = trustProxies(PROXIES);
  assert.equal(clientOf('203.0.113.9', '198.51.100.1'), '203.0.113.9');
  assert.equal(clientOf('203.0.113.9', '10.0.0.7'), '203.0.113.9', 'even when the header names a trusted proxy');
  assert.equal(clientOf('2001:db8:beef::1', '198.51.100.1'), '2001:db8:beef::1');
  assert.equal(clientOf('', '198.51.100.1'), '', 'an unknown peer');
  // No trusted proxies at all: the peer, always.
  assert.equal(trustProxies([])('10.0.0.1', '198.51.100.1'), '10.0.0.1');
});

test('trustProxies: behind one trusted proxy, the address it forwarded is the client', () => {
  const clientOf = trustProxies(PROXIES);
  assert.equal(clientOf('10.0.0.2', '198.51.100.1'), '198.51.100.1');
  assert.equal(clientOf('::ffff:10.0.0.2', '198.51.100.1'), '198.51.100.1', 'the proxy seen on a dual-stack socket');
  assert.equal(clientOf('2001:db8:cafe::2', '2001:db8:beef::1'), '2001:db8:beef::1', 'IPv6 proxy and client');
  assert.equal(clientOf('10.0.0.2', '  198.51.100.1\t'), '198.51.100.1', 'spaces and tabs around an element');
  assert.equal(clientOf('10.0.0.2', undefined), '10.0.0.2', 'no header: the proxy itself');
  assert.equal(clientOf('10.0.0.2', ''), '10.0.0.2', 'an empty header: the proxy itself');
});

test('trustProxies: through two proxies, walking from the right past trusted ones', () => {
  const clientOf = trustProxies(PROXIES);
  assert.equal(clientOf('10.0.0.2', '198.51.100.1, 10.0.0.3'), '198.51.100.1');
  assert.equal(clientOf('10.0.0.2', '198.51.100.1,10.0.0.3'), '198.51.100.1', 'no space after the comma');
  assert.equal(clientOf('10.0.0.2', '198.51.100.1, 2001:db8:cafe::9, 10.0.0.3'), '198.51.100.1', 'mixed families');
  // Repeated X-Forwarded-For fields arrive joined by ", ": one list.
  assert.equal(clientOf('10.0.0.2', '198.51.100.1, 10.0.0.4, 10.0.0.3'), '198.51.100.1');
});

test('trustProxies: spoofed elements left of the first untrusted address are ignored', () => {
  const clientOf = trustProxies(PROXIES);
  assert.equal(clientOf('10.0.0.2', '1.1.1.1, 198.51.100.1'), '198.51.100.1');
  assert.equal(clientOf('10.0.0.2', '10.0.0.99, 198.51.100.1, 10.0.0.3'), '198.51.100.1', 'a spoofed trusted address further left');
  assert.equal(clientOf('10.0.0.2', 'garbage, 198.51.100.1'), '198.51.100.1', 'garbage left of the client is never read');
  assert.equal(clientOf('10.0.0.2', ', , 198.51.100.1'), '198.51.100.1');
});

test('trustProxies: when every element is a trusted proxy, the leftmost is the client', () => {
  const clientOf = trustProxies(PROXIES);
  assert.equal(clientOf('10.0.0.2', '10.1.1.1, 10.0.0.3'), '10.1.1.1');
  assert.equal(clientOf('10.0.0.2', '10.0.0.3'), '10.0.0.3');
});

test('trustProxies: a malformed element stops the walk at the last address read', () => {
  const clientOf = trustProxies(PROXIES);
  assert.equal(clientOf('10.0.0.2', '198.51.100.1, garbage'), '10.0.0.2', 'the rightmost is malformed: the peer');
  assert.equal(clientOf('10.0.0.2', '198.51.100.1, unknown, 10.0.0.3'), '10.0.0.3', 'stopped at the proxy right of it');
  assert.equal(clientOf('10.0.0.2', '198.51.100.1,, 10.0.0.3'), '10.0.0.3', 'an empty element');
  assert.equal(clientOf('10.0.0.2', ',10.0.0.3'), '10.0.0.3', 'an empty leftmost element');
  assert.equal(clientOf('10.0.0.2', '198.51.100.1, 10.0.0.3,'), '10.0.0.2', 'a trailing comma');
  assert.equal(clientOf('10.0.0.2', '198.51.100.1, 256.0.0.1, 10.0.0.3'), '10.0.0.3', 'an IPv4 address out of range');
  assert.equal(clientOf('10.0.0.2', '198.51.100.1, 10.0.0.3 10.0.0.4'), '10.0.0.2', 'two addresses in one element');
  assert.equal(clientOf('10.0.0.2', '198.51.100.1:70000'), '10.0.0.2', 'a port out of range');
  assert.equal(clientOf('10.0.0.2', '198.51.100.1:'), '10.0.0.2', 'an empty port');
  assert.equal(clientOf('10.0.0.2', '[198.51.100.1]'), '10.0.0.2', 'IPv4 in brackets');
  assert.equal(clientOf('10.0.0.2', '[2001:db8::1'), '10.0.0.2', 'an unclosed bracket');
  assert.equal(clientOf('10.0.0.2', '[2001:db8::1]x'), '10.0.0.2', 'junk after the bracket');
  assert.equal(clientOf('10.0.0.2', `${'1'.repeat(500)}`), '10.0.0.2', 'a very long element');
});

test('trustProxies: ports and brackets are taken off, the address comes back as written', () => {
  const clientOf = trustProxies(PROXIES);
  assert.equal(clientOf('10.0.0.2', '198.51.100.1:52100'), '198.51.100.1');
  assert.equal(clientOf('10.0.0.2', '[2001:db8:beef::1]:443'), '2001:db8:beef::1');
  assert.equal(clientOf('10.0.0.2', '[2001:db8:beef::1]'), '2001:db8:beef::1');
  assert.equal(clientOf('10.0.0.2', '198.51.100.1, 10.0.0.3:8080'), '198.51.100.1', 'a trusted proxy with a port is skipped too');
  assert.equal(clientOf('10.0.0.2', '2001:DB8:BEEF::1'), '2001:DB8:BEEF::1');
  assert.equal(clientOf('10.0.0.2', 'fe80::1%eth0'), 'fe80::1%eth0');
});

test('clientAddressOf applies the same rule in one call', () => {
  assert.equal(clientAddressOf('10.0.0.2', '1.1.1.1, 198.51.100.1, 10.0.0.3', PROXIES), '198.51.100.1');
  assert.equal(clientAddressOf('203.0.113.9', '198.51.100.1', PROXIES), '203.0.113.9');
  assert.equal(clientAddressOf('10.0.0.2', 'unknown', PROXIES), '10.0.0.2');
  assert.equal(clientAddressOf('10.0.0.2', '10.0.0.5', []), '10.0.0.2');
  throwsNaming(() => clientAddressOf('10.0.0.2', undefined, ['10.0.0.0/40']), '10.0.0.0/40');
});
