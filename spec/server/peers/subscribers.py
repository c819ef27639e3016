"""Subscribers for spec/server/topics.spec.ts, on Python `websockets` (10.4, asyncio API).

Usage: /usr/bin/python3 subscribers.py ws://127.0.0.1:PORT/ COUNT MESSAGES

Opens COUNT connections (the server subscribes each to a topic when it opens),
sends "ready" on each, then reads MESSAGES messages on every connection and
prints one JSON line per connection:
  {"index": 0, "kinds": ["text", "binary", ...], "sha256": [...], "ok": true}
then closes every connection with 1000. The test compares the digests with
what the server published. Exit status 0, or 2 on a crash.
"""

import asyncio
import hashlib
import json
import sys

import websockets


async def subscriber(uri, index, count):
    async with websockets.connect(uri, max_size=None) as ws:
        await ws.send("ready")
        kinds, digests = [], []
        for _ in range(count):
            message = await asyncio.wait_for(ws.recv(), timeout=20)
            data = message.encode("utf-8") if isinstance(message, str) else message
            kinds.append("text" if isinstance(message, str) else "binary")
            digests.append(hashlib.sha256(data).hexdigest())
        print(json.dumps({"index": index, "kinds": kinds, "sha256": digests, "ok": True}), flush=True)
        await ws.close(1000, "python done")


async def main(uri, connections, messages):
    await asyncio.gather(*(subscriber(uri, i, messages) for i in range(connections)))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    except Exception as error:  # reported to the test, which fails with it
        print(json.dumps({"index": -1, "ok": False, "error": repr(error)}), flush=True)
        sys.exit(2)
