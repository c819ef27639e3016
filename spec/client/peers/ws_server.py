"""Python `websockets` (10.4, asyncio API) server for the resound client specs.

Usage: /usr/bin/python3 ws_server.py

Listens on 127.0.0.1, port 0 (max_size=None: no message limit) and prints
`PORT n` on stdout, then one JSON object per line for what it observed.
What a connection does depends on its request path:

  /echo...                  echo every message (text as text, binary as binary)
  /close?code=C&reason=R    send the text "before close", then close with C and R
  /fragments                send the text "fragmented ✓" in three frames and the
                            bytes 00..ff in four, then echo like /echo
  /ping?data=HEX            ping with those bytes, wait for the pong, report it:
                              {"event": "pong", "path": ..., "data": HEX}
                            then echo like /echo

Every connection ends with
  {"event": "closed", "path": ..., "code": close code, "reason": close reason}
where code/reason are those of the close frame the server received (1006 if none).

The process exits when its standard input closes, so a crashed test run does
not leave it behind.
"""

import asyncio
import json
import os
import sys
import threading
from urllib.parse import parse_qs, urlsplit

import websockets


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def handler(ws):
    path = ws.path
    query = parse_qs(urlsplit(path).query)
    try:
        if path.startswith("/close"):
            await ws.send("before close")
            await ws.close(int(query["code"][0]), query.get("reason", [""])[0])
        elif path.startswith("/fragments"):
            await ws.send(["frag", "ment", "ed \u2713"])
            await ws.send([bytes(range(0, 64)), bytes(range(64, 128)), bytes(range(128, 192)), bytes(range(192, 256))])
            await echo(ws)
        elif path.startswith("/ping"):
            data = bytes.fromhex(query.get("data", [""])[0])
            pong_waiter = await ws.ping(data)
            await asyncio.wait_for(pong_waiter, 5)
            emit({"event": "pong", "path": path, "data": data.hex()})
            await echo(ws)
        else:
            await echo(ws)
        await ws.wait_closed()
    finally:
        emit({"event": "closed", "path": path, "code": ws.close_code, "reason": ws.close_reason})


def exit_when_stdin_closes():
    sys.stdin.buffer.read()
    os._exit(0)


async def main():
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    async with websockets.serve(
        handler,
        "127.0.0.1",
        0,
        max_size=None,
        ping_interval=None,
        close_timeout=2,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
