"""A Python `websockets` (10.4, asyncio API) peer for permessage-deflate interop.

Usage:
  /usr/bin/python3 deflate_peer.py client URI [--no-compression]
      Connects (compression on, websockets' default, unless --no-compression),
      then for each case sends one message, reads the echo and compares it
      byte for byte; closes with 1000. One JSON object per line:
        {"event": "open", "extensions": [...], "response_extensions": ...}
        {"case": ..., "kind": ..., "size": ..., "sha": ..., "ok": ..., "first_diff": ...}
        {"event": "closed", "code": ...}
  /usr/bin/python3 deflate_peer.py server
      An echo server on 127.0.0.1, port 0 (compression on, websockets' own
      defaults: both windows 12 bits). Prints `PORT n`, then per connection
        {"event": "open", "extensions": [...], "request_extensions": ..., "response_extensions": ...}
        {"event": "message", "kind": ..., "size": ..., "sha": ...}   (one per message)
        {"event": "closed", "code": ...}
      Exits when its standard input closes, so a crashed test leaves nothing behind.

The cases are made here, not passed in: a repetitive JSON text of about
100 KB, repetitive and random binary, a short text, and a 1.5 MB text (over
resound's 1 MiB compressLimit).
"""

import argparse
import asyncio
import hashlib
import json
import os
import sys
import threading

import websockets


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def describe(extensions):
    return [
        {
            "name": ext.name,
            "remote_no_context_takeover": getattr(ext, "remote_no_context_takeover", None),
            "local_no_context_takeover": getattr(ext, "local_no_context_takeover", None),
            "remote_max_window_bits": getattr(ext, "remote_max_window_bits", None),
            "local_max_window_bits": getattr(ext, "local_max_window_bits", None),
        }
        for ext in extensions
    ]


def as_bytes(message):
    return message.encode("utf-8") if isinstance(message, str) else message


def report(message):
    data = as_bytes(message)
    return {
        "kind": "text" if isinstance(message, str) else "binary",
        "size": len(data),
        "sha": hashlib.sha256(data).hexdigest(),
    }


def json_text(records):
    rows = [{"id": i, "name": f"user {i} \u2713", "active": i % 3 == 0, "tags": ["alpha", "beta", "gamma"]} for i in range(records)]
    return json.dumps(rows)


def cases():
    return [
        ("text-json", json_text(1100)),
        ("binary-pattern", bytes(range(256)) * 400),
        ("binary-random", os.urandom(64 * 1024)),
        ("text-small", "small \u2713"),
        ("text-over-limit", json_text(15000)),
    ]


def first_difference(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return -1 if len(a) == len(b) else min(len(a), len(b))


async def client(args):
    async with websockets.connect(
        args.uri,
        compression=None if args.no_compression else "deflate",
        max_size=None,
        ping_interval=None,
        close_timeout=2,
    ) as ws:
        emit({
            "event": "open",
            "extensions": describe(ws.extensions),
            "response_extensions": ws.response_headers.get("Sec-WebSocket-Extensions"),
        })
        for name, message in cases():
            await ws.send(message)
            echo = await ws.recv()
            sent, got = as_bytes(message), as_bytes(echo)
            emit({
                "case": name,
                **report(message),
                "ok": sent == got and type(echo) is type(message),
                "first_diff": first_difference(sent, got),
            })
        await ws.close(1000)
        emit({"event": "closed", "code": ws.close_code})


async def handler(ws):
    emit({
        "event": "open",
        "extensions": describe(ws.extensions),
        "request_extensions": ws.request_headers.get("Sec-WebSocket-Extensions"),
        "response_extensions": ws.response_headers.get("Sec-WebSocket-Extensions"),
    })
    try:
        async for message in ws:
            emit({"event": "message", **report(message)})
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    finally:
        emit({"event": "closed", "code": ws.close_code})


def exit_when_stdin_closes():
    sys.stdin.buffer.read()
    os._exit(0)


async def server(_args):
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None, close_timeout=2) as srv:
        print(f"PORT {srv.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("client")
    c.add_argument("uri")
    c.add_argument("--no-compression", action="store_true")
    sub.add_parser("server")
    args = parser.parse_args()
    try:
        asyncio.run(client(args) if args.mode == "client" else server(args))
    except Exception as error:  # reported as a line, so the spec shows it
        emit({"event": "crash", "error": repr(error)})
        sys.exit(1)
