"""Echo client for spec/server/python.spec.ts, on Python `websockets` (10.4, asyncio API).

Usage: /usr/bin/python3 echo_client.py ws://127.0.0.1:PORT/path

Sends text and binary messages of several sizes (seeded, non-uniform content),
checks each echo byte for byte, sends a ping and waits for its pong, then
closes with 1000. Prints one JSON object per line:
  {"case": "binary-126", "kind": "binary", "size": 126, "sent_sha": ..., "ok": true, ...}
  {"case": "ping", "payload_hex": ..., "ok": true}
  {"case": "close", "close_code": 1000, "ok": true}
Exit status 0 when every case passed, 1 otherwise, 2 on a crash.
"""

import asyncio
import hashlib
import json
import random
import sys

import websockets

SIZES = [0, 125, 126, 65535, 65536, 16 * 1024 * 1024]
ALPHABET = ["a", "Z", "0", " ", "~", "é", "ß", "Ω", "Ж", "€", "中", "文", "ア", "😀", "🎉", "𝄞"]


def pattern_bytes(size, seed):
    return random.Random(seed).randbytes(size)


def pattern_text(size, seed):
    """Seeded text of exactly `size` UTF-8 bytes mixing 1- to 4-byte characters."""
    indices = random.Random(seed).randbytes(size // 2 + 64)
    text = "".join(map(ALPHABET.__getitem__, (b & 15 for b in indices)))
    encoded = text.encode("utf-8")[:size]
    text = encoded.decode("utf-8", errors="ignore")
    return text + "q" * (size - len(text.encode("utf-8")))


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return -1 if len(a) == len(b) else min(len(a), len(b))


def report(**fields):
    print(json.dumps(fields), flush=True)


async def main(uri):
    all_ok = True
    async with websockets.connect(uri, max_size=None) as ws:
        for kind in ("binary", "text"):
            for size in SIZES:
                if kind == "binary":
                    data = pattern_bytes(size, 7000 + size)
                    wire = data
                else:
                    data = pattern_text(size, 8000 + size)
                    wire = data.encode("utf-8")
                assert len(wire) == size
                await ws.send(data)
                echoed = await asyncio.wait_for(ws.recv(), 30)
                same_type = isinstance(echoed, bytes) == (kind == "binary")
                echoed_wire = echoed if isinstance(echoed, bytes) else echoed.encode("utf-8")
                ok = same_type and echoed_wire == wire
                all_ok = all_ok and ok
                report(
                    case=f"{kind}-{size}",
                    kind=kind,
                    size=size,
                    sent_sha=hashlib.sha256(wire).hexdigest(),
                    recv_len=len(echoed_wire),
                    same_type=same_type,
                    first_diff=first_difference(echoed_wire, wire),
                    ok=ok,
                )

        payload = bytes(range(0, 250, 2))  # 125 bytes, the most a control frame carries
        pong = await ws.ping(payload)
        try:
            await asyncio.wait_for(pong, 5)
            ok = True
        except asyncio.TimeoutError:
            ok = False
        all_ok = all_ok and ok
        report(case="ping", payload_hex=payload.hex(), ok=ok)

        # A message after the ping still echoes: the pong did not disturb framing.
        await ws.send("after ping ✓")
        echoed = await asyncio.wait_for(ws.recv(), 5)
        ok = echoed == "after ping ✓"
        all_ok = all_ok and ok
        report(case="after-ping", ok=ok)

        await ws.close(code=1000, reason="python done")
        report(case="close", close_code=ws.close_code, ok=ws.close_code == 1000)
        all_ok = all_ok and ws.close_code == 1000
    return 0 if all_ok else 1


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(sys.argv[1])))
    except Exception as error:  # report, then fail loudly
        report(case="crash", error=repr(error), ok=False)
        sys.exit(2)
