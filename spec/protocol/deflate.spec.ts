/**
 * permessage-deflate (RFC 7692) without sockets: the extension grammar,
 * negotiation on both sides, RSV1 rules, compression both ways with and
 * without context takeover, limits and bad input, byte by byte.
 */
import assert from 'node:assert/strict';
import { constants, createDeflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { ClientProtocol, ServerProtocol, State, PreparedMessage, type ProtocolEvent } from '../../lib/protocol/index.js';
import { ExtensionHeaderError, formatExtensions, parseExtensions } from '../../lib/protocol/extensions.js';
import { acceptOffer, acceptResponse, MessageDeflater } from '../../lib/protocol/permessage-deflate.js';
import { binary, cont, frame, openServer, OP, ping, RSV1, text, Wire, type OutFrame } from './helpers.js';
import { RFC_KEY } from '../support.js';

/** Raw deflate of `data` as a peer sends it: a sync flush, the trailing 00 00 ff ff removed. */
function deflated(data: string | Buffer): Buffer {
  const out = deflateRawSync(typeof data === 'string' ? Buffer.from(data) : data, { finishFlush: constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

/** What a compressed frame's payload inflates to. */
function inflated(payload: Buffer): Buffer {
  return inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH });
}

const OFFER = 'permessage-deflate; client_max_window_bits';
const JSON_TEXT = JSON.stringify(Array.from({ length: 60 }, (_, i) => ({ id: i, name: `user-${i % 7}`, active: i % 2 === 0 })));

function openDeflate(options: ConstructorParameters<typeof ServerProtocol>[0] = {}, offer = OFFER): Wire {
  return openServer(options, { add: [['Sec-WebSocket-Extensions', offer]] });
}

function messages(events: readonly ProtocolEvent[]): Array<string | Buffer> {
  return events.flatMap((e) => (e.type === 'message' ? [e.data] : []));
}

describe('the Sec-WebSocket-Extensions grammar', () => {
  test('several extensions, parameters with and without values, quoted values, empty elements, whitespace', () => {
    assert.deepEqual(parseExtensions('permessage-deflate; client_max_window_bits, foo;bar="baz" ; q=1 ,, x'), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
      { name: 'foo', params: [['bar', 'baz'], ['q', '1']] },
      { name: 'x', params: [] },
    ]);
    assert.deepEqual(parseExtensions('a; b="\\1\\0"'), [{ name: 'a', params: [['b', '10']] }]);
    assert.equal(formatExtensions(parseExtensions('a; b=1; c, d')), 'a; b=1; c, d');
  });

  for (const bad of ['permessage-deflate;;', 'a; =1', 'a b', 'a; b="1 0"', 'a; b="unterminated', 'a; b=', '; x', 'a; b="\\']) {
    test(`malformed: ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseExtensions(bad), ExtensionHeaderError);
    });
  }

  test('the server answers a malformed header with 400 and a body saying why', () => {
    const wire = new Wire();
    wire.feed(Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${RFC_KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; x="a b"\r\n\r\n`));
    wire.p.sendResponse(wire.p.accept());
    const step = wire.collect();
    assert.equal(step.response?.status, 400);
    assert.match(step.response!.body.toString(), /Sec-WebSocket-Extensions: the quoted value of x is not a token/);
  });
});

describe('negotiation on the server', () => {
  const answer = (offer: string, options = {}): string | null => {
    const chosen = acceptOffer(parseExtensions(offer), options);
    return chosen === null ? null : formatExtensions([chosen.response]);
  };

  test('the default answer keeps no server context, and takes the client window as offered', () => {
    assert.equal(answer('permessage-deflate'), 'permessage-deflate; server_no_context_takeover');
    assert.equal(answer(OFFER), 'permessage-deflate; server_no_context_takeover');
    assert.equal(answer('permessage-deflate; client_max_window_bits=10'), 'permessage-deflate; server_no_context_takeover; client_max_window_bits=10');
    assert.equal(answer('permessage-deflate; server_max_window_bits=12'), 'permessage-deflate; server_no_context_takeover; server_max_window_bits=12');
    assert.equal(answer('permessage-deflate; client_no_context_takeover'), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  });

  test('server options: context takeover allowed, smaller windows, asking clients to drop their context', () => {
    assert.equal(answer('permessage-deflate', { serverNoContextTakeover: false }), 'permessage-deflate');
    assert.equal(answer('permessage-deflate', { serverNoContextTakeover: false, serverMaxWindowBits: 10 }), 'permessage-deflate; server_max_window_bits=10');
    assert.equal(answer('permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 10 }), 'permessage-deflate; server_no_context_takeover; server_max_window_bits=10');
    assert.equal(answer(OFFER, { clientMaxWindowBits: 9 }), 'permessage-deflate; server_no_context_takeover; client_max_window_bits=9');
    // client_max_window_bits may not be answered when the client did not offer it.
    assert.equal(answer('permessage-deflate', { clientMaxWindowBits: 9 }), 'permessage-deflate; server_no_context_takeover');
    assert.equal(answer('permessage-deflate', { clientNoContextTakeover: true }), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  });

  test('an offer with an unknown, repeated or out-of-range parameter is declined, and the next one taken', () => {
    for (const bad of [
      'permessage-deflate; foo',
      'permessage-deflate; server_max_window_bits=7',
      'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate; server_max_window_bits',
      'permessage-deflate; server_max_window_bits=010',
      'permessage-deflate; client_max_window_bits=1.5',
      'permessage-deflate; server_no_context_takeover=1',
      'permessage-deflate; client_no_context_takeover; client_no_context_takeover',
      'x-webkit-deflate-frame',
    ]) {
      assert.equal(answer(bad), null, bad);
    }
    assert.equal(answer('permessage-deflate; foo, permessage-deflate; client_max_window_bits=11'), 'permessage-deflate; server_no_context_takeover; client_max_window_bits=11');
  });

  test('the 101 carries the answer, and perMessageDeflate: false answers without it', () => {
    const on = openDeflate();
    assert.equal(on.response!.headers['sec-websocket-extensions'], 'permessage-deflate; server_no_context_takeover');
    assert.ok(on.p.compression);
    const off = openDeflate({ perMessageDeflate: false });
    assert.equal(off.response!.headers['sec-websocket-extensions'], undefined);
    assert.equal(off.p.compression, null);
    const none = openServer();
    assert.equal(none.response!.headers['sec-websocket-extensions'], undefined);
  });

  test('bad options are refused where they are given', () => {
    assert.throws(() => new ServerProtocol({ perMessageDeflate: { serverMaxWindowBits: 16 } }), /serverMaxWindowBits/);
    assert.throws(() => new ServerProtocol({ perMessageDeflate: { level: 10 } }), /level/);
    assert.throws(() => new ServerProtocol({ perMessageDeflate: { threshold: -1 } }), /threshold/);
    assert.throws(() => new ServerProtocol({ perMessageDeflate: { compressLimit: Number.NaN } }), /compressLimit/);
  });
});

describe('negotiation on the client', () => {
  const agreed = (header: string, options = {}): ReturnType<typeof acceptResponse> => acceptResponse(parseExtensions(header)[0]!, options);

  test('what the server answered is what both use', () => {
    assert.deepEqual(agreed('permessage-deflate; server_no_context_takeover'), {
      serverNoContextTakeover: true,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
    });
    assert.deepEqual(agreed('permessage-deflate; client_max_window_bits=10; server_max_window_bits=9'), {
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 9,
      clientMaxWindowBits: 10,
    });
  });

  test('an answer beyond the offer is refused with a reason', () => {
    assert.match(String(agreed('permessage-deflate; foo')), /unknown parameter foo/);
    assert.match(String(agreed('permessage-deflate; server_no_context_takeover; server_no_context_takeover')), /twice/);
    assert.match(String(agreed('permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 10 })), /more than the 10 asked for/);
    assert.match(String(agreed('permessage-deflate; client_max_window_bits=20')), /bad client_max_window_bits/);
    assert.match(String(agreed('permessage-deflate', { serverNoContextTakeover: true })), /not granted/);
    assert.match(String(agreed('x-other')), /not offered/);
  });

  test('a client and a server agree and exchange compressed messages both ways, byte for byte', () => {
    const client = new ClientProtocol('ws://example.com/', { key: RFC_KEY });
    client.sendRequest();
    const server = new ServerProtocol();
    server.receiveData(Buffer.concat(client.dataToSend().map((c) => Buffer.from(c))));
    server.eventsReceived();
    server.sendResponse(server.accept());
    client.receiveData(Buffer.concat(server.dataToSend().map((c) => Buffer.from(c))));
    assert.equal(client.eventsReceived()[0]?.type, 'response');
    assert.deepEqual(client.compression, server.compression);
    for (let round = 0; round < 3; round++) {
      client.sendText(JSON_TEXT);
      client.sendBinary(Buffer.from(JSON_TEXT.repeat(2)));
      const wire = Buffer.concat(client.dataToSend().map((c) => Buffer.from(c)));
      assert.ok(wire.length < JSON_TEXT.length, `client frames compressed: ${wire.length} bytes for ${JSON_TEXT.length * 3}`);
      server.receiveData(wire);
      const got = messages(server.eventsReceived());
      assert.equal(got[0], JSON_TEXT);
      assert.deepEqual(got[1], Buffer.from(JSON_TEXT.repeat(2)));
      server.sendText(JSON_TEXT);
      client.receiveData(Buffer.concat(server.dataToSend().map((c) => Buffer.from(c))));
      assert.deepEqual(messages(client.eventsReceived()), [JSON_TEXT]);
    }
  });
});

describe('receiving compressed messages', () => {
  test('one frame, and the same message in fragments (RSV1 on the first only)', () => {
    const wire = openDeflate();
    const payload = deflated(JSON_TEXT);
    let step = wire.feed(text(payload, { rsv: RSV1 }));
    assert.deepEqual(messages(step.events), [JSON_TEXT]);
    const third = Math.floor(payload.length / 3);
    step = wire.feed(
      text(payload.subarray(0, third), { rsv: RSV1, fin: false }),
      cont(payload.subarray(third, 2 * third), { fin: false }),
      ping('mid'),
      cont(payload.subarray(2 * third)),
    );
    assert.deepEqual(messages(step.events), [JSON_TEXT]);
    // Uncompressed messages stay as they are.
    step = wire.feed(text('plain'), binary(Buffer.from([1, 2, 3])));
    assert.deepEqual(messages(step.events), ['plain', Buffer.from([1, 2, 3])]);
  });

  test('the client keeps its context (takeover): later messages refer back to earlier ones', () => {
    const wire = openDeflate();
    // One raw deflate stream across messages, as a client with context takeover writes it.
    const deflater = createDeflateRaw();
    const chunks: Buffer[] = [];
    deflater.on('data', (c: Buffer) => chunks.push(c));
    const send = async (message: string): Promise<Buffer> => {
      chunks.length = 0;
      deflater.write(message);
      await new Promise<void>((resolve) => deflater.flush(constants.Z_SYNC_FLUSH, () => resolve()));
      const out = Buffer.concat(chunks);
      return out.subarray(0, out.length - 4);
    };
    return (async () => {
      const first = await send(JSON_TEXT);
      const second = await send(JSON_TEXT);
      assert.ok(second.length < first.length / 4, 'the second message is mostly a back-reference into the first');
      const step = wire.feed(text(first, { rsv: RSV1 }), text(second, { rsv: RSV1 }));
      assert.deepEqual(messages(step.events), [JSON_TEXT, JSON_TEXT]);
      deflater.close();
    })();
  });

  test('a bomb: a small frame that inflates past maxPayload fails with 1009, having held little more than the limit', () => {
    const wire = openDeflate({ maxPayload: 64 * 1024 });
    const bomb = deflated(Buffer.alloc(64 * 1024 * 1024));
    assert.ok(bomb.length < 128 * 1024, `${bomb.length} compressed bytes`);
    const before = process.memoryUsage().arrayBuffers;
    const step = wire.feed(binary(bomb, { rsv: RSV1 }));
    const grew = process.memoryUsage().arrayBuffers - before;
    assert.equal(wire.p.failure?.closeCode, 1009);
    assert.match(wire.p.failure!.message, /once inflated/);
    assert.equal(step.frames.at(-1)?.code, 1009);
    assert.ok(grew < 8 * 1024 * 1024, `held ${grew} bytes while inflating 64 MiB of zeros against a 64 KiB limit`);
  });

  test('exactly maxPayload inflated is accepted; one byte more is not', () => {
    const limit = 100_000;
    const ok = openDeflate({ maxPayload: limit });
    assert.equal((messages(ok.feed(binary(deflated(Buffer.alloc(limit, 1)), { rsv: RSV1 })).events)[0] as Buffer).length, limit);
    const over = openDeflate({ maxPayload: limit });
    over.feed(binary(deflated(Buffer.alloc(limit + 1, 1)), { rsv: RSV1 }));
    assert.equal(over.p.failure?.closeCode, 1009);
  });

  test('a corrupt deflate stream fails with 1007 in a text message and 1002 in a binary one', () => {
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x12]);
    const t = openDeflate();
    t.feed(text(garbage, { rsv: RSV1 }));
    assert.equal(t.p.failure?.closeCode, 1007);
    const b = openDeflate();
    b.feed(binary(garbage, { rsv: RSV1 }));
    assert.equal(b.p.failure?.closeCode, 1002);
    assert.match(b.p.failure!.message, /does not inflate/);
  });

  test('inflated text that is not UTF-8 fails with 1007', () => {
    const wire = openDeflate();
    wire.feed(text(deflated(Buffer.from([0x61, 0xc3, 0x28])), { rsv: RSV1 }));
    assert.equal(wire.p.failure?.closeCode, 1007);
  });

  test('RSV1 without the extension, on a continuation frame, on a control frame, and RSV2/RSV3: 1002', () => {
    const plain = openServer();
    plain.feed(text(deflated('x'), { rsv: RSV1 }));
    assert.equal(plain.p.failure?.closeCode, 1002);
    const onCont = openDeflate();
    onCont.feed(text('a', { fin: false }), cont(deflated('b'), { rsv: RSV1 }));
    assert.equal(onCont.p.failure?.closeCode, 1002);
    assert.match(onCont.p.failure!.message, /continuation/);
    const onPing = openDeflate();
    onPing.feed(ping('x', { rsv: RSV1 }));
    assert.equal(onPing.p.failure?.closeCode, 1002);
    const rsv2 = openDeflate();
    rsv2.feed(frame(OP.TEXT, 'x', { rsv: 0x20 }));
    assert.equal(rsv2.p.failure?.closeCode, 1002);
  });
});

describe('sending compressed messages', () => {
  const rsvOf = (frames: readonly OutFrame[]): number[] => frames.map((f) => f.rsv);

  test('over the threshold with RSV1, under it as it is; control frames never; { compress: false } opts out', () => {
    const wire = openDeflate();
    wire.p.sendText(JSON_TEXT);
    wire.p.sendText('small');
    wire.p.sendBinary(Buffer.alloc(5000, 3));
    wire.p.sendBinary(Buffer.alloc(5000, 3), { compress: false });
    wire.p.sendPing(Buffer.alloc(100, 1));
    // Binary just under the 1 KiB threshold goes as it is too (bytes, not an estimate, count for binary).
    wire.p.sendBinary(Buffer.alloc(1023, 3));
    const step = wire.collect();
    assert.deepEqual(rsvOf(step.frames), [RSV1, 0, RSV1, 0, 0, 0]);
    assert.equal(inflated(step.frames[0]!.payload).toString(), JSON_TEXT);
    assert.deepEqual(inflated(step.frames[2]!.payload), Buffer.alloc(5000, 3));
    assert.ok(step.frames[0]!.payload.length < JSON_TEXT.length / 3);
  });

  test('threshold and compressLimit are options; an empty message compresses to one 0x00 byte', () => {
    const wire = openDeflate({ perMessageDeflate: { threshold: 0, compressLimit: 4096 } });
    wire.p.sendText('');
    wire.p.sendBinary(Buffer.alloc(4096));
    wire.p.sendBinary(Buffer.alloc(4097));
    const step = wire.collect();
    assert.deepEqual(rsvOf(step.frames), [RSV1, RSV1, 0]);
    assert.deepEqual(step.frames[0]!.payload, Buffer.from([0x00]));
    assert.equal(inflated(step.frames[0]!.payload).length, 0);
  });

  test('without server context takeover each message stands alone; with it, later ones refer back', () => {
    const alone = openDeflate();
    alone.p.sendText(JSON_TEXT);
    alone.p.sendText(JSON_TEXT);
    const [a1, a2] = alone.collect().frames;
    assert.deepEqual(a1!.payload, a2!.payload, 'the same message compresses the same every time');
    const kept = openDeflate({ perMessageDeflate: { serverNoContextTakeover: false } });
    assert.equal(kept.response!.headers['sec-websocket-extensions'], 'permessage-deflate');
    kept.p.sendText(JSON_TEXT);
    kept.p.sendText(JSON_TEXT);
    const [k1, k2] = kept.collect().frames;
    assert.ok(k2!.payload.length < k1!.payload.length / 4, `${k2!.payload.length} vs ${k1!.payload.length}`);
    // A peer's inflater keeps its context too: both inflate, in order, from one stream.
    const stream = inflateRawSync(Buffer.concat([k1!.payload, Buffer.from([0, 0, 0xff, 0xff]), k2!.payload, Buffer.from([0, 0, 0xff, 0xff])]), {
      finishFlush: constants.Z_SYNC_FLUSH,
    });
    assert.equal(stream.toString(), JSON_TEXT + JSON_TEXT);
  });

  test('a peer limited to a 256-byte window (server_max_window_bits=8) gets our messages uncompressed', () => {
    const wire = openDeflate({}, 'permessage-deflate; server_max_window_bits=8');
    assert.equal(wire.response!.headers['sec-websocket-extensions'], 'permessage-deflate; server_no_context_takeover; server_max_window_bits=8');
    wire.p.sendText(JSON_TEXT);
    assert.deepEqual(rsvOf(wire.collect().frames), [0]);
    // What it sends us still inflates.
    assert.deepEqual(messages(wire.feed(text(deflated(JSON_TEXT), { rsv: RSV1 })).events), [JSON_TEXT]);
  });

  test('a publish is compressed once for every subscriber without server context takeover', () => {
    const message = new PreparedMessage(JSON_TEXT);
    const a = openDeflate();
    const b = openDeflate();
    const plain = openServer();
    a.p.sendPrepared(message);
    b.p.sendPrepared(message);
    plain.p.sendPrepared(message);
    const [fa] = a.collect().frames;
    const [fb] = b.collect().frames;
    const [fp] = plain.collect().frames;
    assert.equal(fa!.rsv, RSV1);
    assert.deepEqual(fa!.raw, fb!.raw);
    assert.equal(fp!.rsv, 0);
    assert.equal(fp!.payload.toString(), JSON_TEXT);
    assert.equal(inflated(fa!.payload).toString(), JSON_TEXT);
    assert.equal(message.compressedFrame(a.p['deflate' as never] as MessageDeflater), message.compressedFrame(b.p['deflate' as never] as MessageDeflater), 'the same buffer');
    const optedOut = new PreparedMessage(JSON_TEXT, false);
    a.p.sendPrepared(optedOut);
    assert.equal(a.collect().frames[0]!.rsv, 0);
  });

  test('the connection closes cleanly and its zlib streams are released at EOF', () => {
    const wire = openDeflate({ perMessageDeflate: { serverNoContextTakeover: false } });
    wire.p.sendText(JSON_TEXT);
    wire.collect();
    wire.feed(frame(OP.CLOSE, Buffer.from([0x03, 0xe8])));
    wire.eof();
    assert.equal(wire.p.state, State.CLOSED);
  });
});

describe('deflate streams that end (BFINAL) and incompressible messages at the limit', () => {
  // RFC 7692 §7.2.3.4's own example: "Hello" in one final fixed-Huffman block, then 0x00 (the start of an empty stored block).
  const HELLO_FINAL = Buffer.from([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]);
  const HELLO_FINAL_BARE = HELLO_FINAL.subarray(0, 7);

  for (const offer of ['permessage-deflate', 'permessage-deflate; client_no_context_takeover']) {
    test(`messages ending their stream with a BFINAL block are each inflated (${offer})`, () => {
      const wire = openDeflate({}, offer);
      const step = wire.feed(text(HELLO_FINAL, { rsv: RSV1 }), text(HELLO_FINAL_BARE, { rsv: RSV1 }), text(deflated(JSON_TEXT), { rsv: RSV1 }));
      assert.deepEqual(messages(step.events), ['Hello', 'Hello', JSON_TEXT]);
    });
  }

  test('data after the end of a deflate stream inside one message fails the connection', () => {
    const wire = openDeflate();
    wire.feed(binary(Buffer.concat([HELLO_FINAL, Buffer.from([1, 2, 3, 4, 5, 6])]), { rsv: RSV1 }));
    assert.equal(wire.p.failure?.closeCode, 1002);
    assert.match(wire.p.failure!.message, /after the end of the deflate stream/);
  });

  test('an incompressible message of exactly maxPayload, compressed by the peer (a little larger on the wire), is accepted', () => {
    const limit = 200_000;
    const random = Buffer.from(Array.from({ length: limit }, (_, i) => (i * 2654435761) >>> 24));
    const payload = deflated(random);
    const wire = openDeflate({ maxPayload: limit });
    const got = messages(wire.feed(binary(payload, { rsv: RSV1 })).events);
    assert.equal(wire.p.failure, null, `${payload.length} bytes on the wire for ${limit}`);
    assert.deepEqual(got[0], random);
  });
});
