"""A small Python `websockets` (10.4, asyncio API) peer for the deploy specs.

Usage: /usr/bin/python3 probe.py URI [--ca FILE] [--subprotocol NAME]... [--header NAME:VALUE]... [--origin ORIGIN]

Opens the connection (TLS with --ca), sends one text and one binary message
and reads their answers, then closes with 1000. Prints one JSON line:
  {"ok": true, "subprotocol": ..., "text": ..., "binary_hex": ..., "close_code": ...}
or, when the handshake is refused:
  {"ok": false, "status": 403}
"""

import argparse
import asyncio
import json
import ssl

import websockets


async def main(args):
    context = None
    if args.uri.startswith("wss://"):
        context = ssl.create_default_context(cafile=args.ca)
    headers = [tuple(h.split(":", 1)) for h in args.header]
    try:
        async with websockets.connect(
            args.uri,
            ssl=context,
            subprotocols=args.subprotocol or None,
            extra_headers=headers,
            origin=args.origin,
            max_size=None,
        ) as ws:
            await ws.send("hello from python")
            text = await ws.recv()
            await ws.send(bytes([0, 1, 2, 250, 251, 252]))
            binary = await ws.recv()
            await ws.close(1000)
            print(json.dumps({
                "ok": True,
                "subprotocol": ws.subprotocol,
                "text": text,
                "binary_hex": binary.hex() if isinstance(binary, bytes) else None,
                "close_code": ws.close_code,
            }), flush=True)
    except websockets.exceptions.InvalidStatusCode as error:
        print(json.dumps({"ok": False, "status": error.status_code}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("uri")
    parser.add_argument("--ca")
    parser.add_argument("--subprotocol", action="append", default=[])
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--origin")
    asyncio.run(main(parser.parse_args()))
