#!/usr/bin/python3
"""load/bench/idle_conns.py HOST PORT N - hold N idle HTTP/2 connections.

S4's client (issue 19): opens N TCP connections to HOST:PORT (at most 256
handshakes at once), on each sends the HTTP/2 client preface and an empty
SETTINGS frame, reads the server's frames until its SETTINGS, acknowledges
them, and then only reads (answering nothing else; a PING gets its ACK).
No request is ever sent. Once every connection is set up (or failed) it
prints one line, "open OK failed F" (flushed), then holds them until its
stdin closes; it then prints "closed_by_server K" (the connections the
server had closed meanwhile) and exits. Standard library only; raises
RLIMIT_NOFILE to its hard limit.
"""
import asyncio
import resource
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS_EMPTY = struct.pack(">I", 0)[1:] + bytes([4, 0]) + struct.pack(">I", 0)
SETTINGS_ACK = struct.pack(">I", 0)[1:] + bytes([4, 1]) + struct.pack(">I", 0)


class State:
    def __init__(self):
        self.ok = 0
        self.failed = 0
        self.closed = 0
        self.errors = {}
        self.writers = []


async def read_frame(reader):
    head = await reader.readexactly(9)
    length = int.from_bytes(head[:3], "big")
    payload = await reader.readexactly(length) if length else b""
    return head[3], head[4], payload


async def hold(reader, writer, st):
    try:
        while True:
            ftype, flags, payload = await read_frame(reader)
            if ftype == 6 and not flags & 1:  # PING: answer it
                writer.write(struct.pack(">I", 8)[1:] + bytes([6, 1]) + struct.pack(">I", 0) + payload)
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        st.closed += 1


async def one(host, port, st, sem, tasks):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
            writer.write(PREFACE + SETTINGS_EMPTY)
            while True:
                ftype, flags, _ = await asyncio.wait_for(read_frame(reader), 30)
                if ftype == 4 and not flags & 1:
                    break
            writer.write(SETTINGS_ACK)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, OSError) as e:
            st.failed += 1
            key = type(e).__name__
            st.errors[key] = st.errors.get(key, 0) + 1
            return
        st.ok += 1
        st.writers.append(writer)
        tasks.append(asyncio.ensure_future(hold(reader, writer, st)))


async def main(host, port, n):
    st = State()
    sem = asyncio.Semaphore(256)
    tasks = []
    await asyncio.gather(*(one(host, port, st, sem, tasks) for _ in range(n)))
    extra = " errors " + ",".join("%s=%d" % kv for kv in sorted(st.errors.items())) if st.errors else ""
    print("open %d failed %d%s" % (st.ok, st.failed, extra), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    print("closed_by_server %d" % st.closed, flush=True)
    for w in st.writers:
        w.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: idle_conns.py HOST PORT N")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
