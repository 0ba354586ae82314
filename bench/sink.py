#!/usr/bin/env python3
"""A minimal DockMon server stand-in for the benchmark: accepts agents, counts what they send.

Read this first: the DockMon side of the protocol is in the spec (../shared/spec/dockmon-protocol.md)
§2.3-2.5 (registration), §3.5 and §4 (the frames an agent sends). This sink implements only what
an agent needs to keep sending: the RFC 6455 server side (handshake §4.2.2, frames §5.2, ping/pong
§5.5.2-3, close §5.5.1), the reply to the first `register` frame (spec §2.5) and the server pings
uvicorn sends every 20 s (spec §2.2). Of the commands it sends only `list_containers` (below).

Endpoints (one port, 127.0.0.1 by default):
  GET /api/agent/ws          WebSocket, the main agent channel: the first text frame of type
                             `register` is answered with `auth_success` (fresh UUIDs per connection,
                             permanent_token = agent_id, as the backend does)
  GET /api/stats/ws/ingest   WebSocket, the stats-service ingest (spec §4.5): counted as `ingest`;
                             with --ingest-status N answered with HTTP N instead (an older server)
  GET /counters              JSON: cumulative counters since start (the bench diffs two readings)
  GET /bench/health          200 `ok`: the target of the agent-side health checks below

After auth it sends `list_containers` every --poll seconds (default 10), as DockMon's container poller
does (spec §2.6: the first one 0.1-2 s after connect), so the reply path is part of a steady agent.
With --health-checks N it also sends `health_check_configs_sync` with N checks right after auth (spec
§3.6.1): most against /bench/health, every fourth expecting 2xx from a 404, every fifth refused.

Counters: per frame kind (`register`, `event:container_stats`, `stats`, `response`, `result`, …)
the number of frames and their payload bytes (the JSON text, what the agent serialised), plus the
wire bytes received (frame headers and masks included), connections, registrations, pings and
pongs, and per container ID (first 12 characters) the number of `container_stats` frames.

Limits: a request head is at most 16 KiB and a message at most 16 MiB (uvicorn's default, spec
§2.2); a client that exceeds them is disconnected. Stdlib only (Python 3.8+).

    python3 bench/sink.py [--host 127.0.0.1] [--port 0]

prints `listening PORT` on stdout once it accepts connections, then runs until SIGTERM or SIGINT.
"""
import argparse
import asyncio
import base64
import hashlib
import json
import signal
import ssl
import struct
import sys
import time
import uuid

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
HEAD_MAX_BYTES = 16 * 1024
MESSAGE_MAX_BYTES = 16 * 1024 * 1024  # uvicorn's ws_max_size default (spec §2.2)
SERVER_PING_INTERVAL_S = 20.0  # uvicorn's ws_ping_interval (spec §2.2)
POLL_S = 10.0  # --poll: seconds between list_containers commands (DockMon's container poller, spec §2.6)
INGEST_STATUS = None  # --ingest-status: answer the ingest upgrade with this HTTP status instead of 101
HEALTH_CHECKS = 0  # --health-checks: agent-side HTTP checks sent after auth (spec §3.6)
HEALTH_INTERVAL_S = 10  # --health-interval: their check_interval_seconds
PORT = 0  # the port we listen on, for the health checks' URLs
TLS = False
EXAMPLE_MAX_CHARS = 600

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class Counters:
    """Cumulative counts since start; read through GET /counters."""

    def __init__(self):
        self.started = time.time()
        self.connections = 0
        self.ingest_connections = 0
        self.ingest_rejected = 0
        self.polls = 0
        self.registrations = 0
        self.wire_bytes_in = 0
        self.wire_bytes_out = 0
        self.pings_in = 0
        self.pongs_in = 0
        self.kinds = {}  # kind -> [frames, payload bytes]
        self.stats_ids = {}  # container id[:12] -> container_stats frames
        self.examples = {}  # kind -> first frame (truncated)
        self.bad_frames = 0
        self.last_register = None

    def count(self, kind, text):
        entry = self.kinds.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += len(text)
        if kind not in self.examples:
            self.examples[kind] = text[:EXAMPLE_MAX_CHARS].decode("utf-8", "replace")

    def as_json(self):
        return {
            "now": time.time(),
            "started": self.started,
            "connections": self.connections,
            "ingest_connections": self.ingest_connections,
            "ingest_rejected": self.ingest_rejected,
            "registrations": self.registrations,
            "polls": self.polls,
            "wire_bytes_in": self.wire_bytes_in,
            "wire_bytes_out": self.wire_bytes_out,
            "pings_in": self.pings_in,
            "pongs_in": self.pongs_in,
            "bad_frames": self.bad_frames,
            "kinds": {k: {"frames": v[0], "bytes": v[1]} for k, v in self.kinds.items()},
            "stats_ids": dict(self.stats_ids),
            "examples": dict(self.examples),
            "last_register": self.last_register,
        }


COUNTERS = Counters()


def kind_of(msg):
    """The frame kind of a decoded agent message (spec §3.1 shapes A, B and C)."""
    if not isinstance(msg, dict):
        return "non-object"
    t = msg.get("type")
    if t == "event":
        return "event:%s" % msg.get("command")
    if t is None and "correlation_id" in msg:
        return "result"
    return str(t)


def unmask(data, mask):
    """XOR with the 4-byte client mask (RFC 6455 §5.3), as one big-integer operation."""
    n = len(data)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def frame(opcode, payload=b""):
    """An unmasked server frame (RFC 6455 §5.2), FIN set."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class Conn:
    def __init__(self, reader, writer, channel):
        self.reader = reader
        self.writer = writer
        self.channel = channel  # "agent" or "ingest"
        self.registered = False
        self.poll_task = None

    async def send(self, opcode, payload=b""):
        data = frame(opcode, payload)
        COUNTERS.wire_bytes_out += len(data)
        self.writer.write(data)
        await self.writer.drain()

    async def read_frame(self):
        """One frame: (fin, opcode, payload). Raises IncompleteReadError on EOF."""
        b0, b1 = await self.reader.readexactly(2)
        used = 2
        fin, opcode = b0 & 0x80, b0 & 0x0F
        masked, n = b1 & 0x80, b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            used += 2
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            used += 8
        if n > MESSAGE_MAX_BYTES:  # checked before the payload is read
            raise ValueError("frame of %d bytes over the %d-byte cap" % (n, MESSAGE_MAX_BYTES))
        mask = b""
        if masked:
            mask = await self.reader.readexactly(4)
            used += 4
        payload = await self.reader.readexactly(n) if n else b""
        COUNTERS.wire_bytes_in += used + n
        if masked:
            payload = unmask(payload, mask)
        return fin, opcode, payload

    async def pinger(self):
        while True:
            await asyncio.sleep(SERVER_PING_INTERVAL_S)
            await self.send(OP_PING, b"sink")

    async def poller(self):
        """DockMon's container poller: `list_containers` soon after auth, then every POLL_S (spec §2.6)."""
        await asyncio.sleep(1)
        while True:
            cid = str(uuid.uuid4())
            cmd = {"type": "command", "command": "list_containers", "id": cid, "correlation_id": cid}
            COUNTERS.polls += 1
            await self.send(OP_TEXT, json.dumps(cmd, separators=(",", ":")).encode())
            await asyncio.sleep(POLL_S)

    async def run(self):
        ping_task = asyncio.ensure_future(self.pinger())
        parts, part_op = [], None
        try:
            while True:
                fin, opcode, payload = await self.read_frame()
                if opcode == OP_PING:
                    COUNTERS.pings_in += 1
                    await self.send(OP_PONG, payload)
                    continue
                if opcode == OP_PONG:
                    COUNTERS.pongs_in += 1
                    continue
                if opcode == OP_CLOSE:
                    await self.send(OP_CLOSE, payload[:2])
                    return
                if opcode in (OP_TEXT, OP_BINARY):
                    parts, part_op = [payload], opcode
                elif opcode == OP_CONT and part_op is not None:
                    parts.append(payload)
                else:
                    COUNTERS.bad_frames += 1
                    continue
                if sum(len(p) for p in parts) > MESSAGE_MAX_BYTES:
                    raise ValueError("message over the %d-byte cap" % MESSAGE_MAX_BYTES)
                if not fin:
                    continue
                message, op = b"".join(parts), part_op
                parts, part_op = [], None
                await self.on_message(op, message)
        finally:
            ping_task.cancel()
            if self.poll_task is not None:
                self.poll_task.cancel()

    async def on_message(self, opcode, text):
        if opcode != OP_TEXT:  # the backend closes with 1011 here (spec §2.2); we only count it
            COUNTERS.count("binary", text)
            return
        try:
            msg = json.loads(text)
        except ValueError:
            COUNTERS.count("invalid-json", text)
            return
        if self.channel == "ingest":
            COUNTERS.count("ingest", text)
            return
        kind = kind_of(msg)
        COUNTERS.count(kind, text)
        if kind == "event:container_stats":
            payload = msg.get("payload") if isinstance(msg.get("payload"), dict) else {}
            cid = str(payload.get("container_id", "?"))[:12]
            COUNTERS.stats_ids[cid] = COUNTERS.stats_ids.get(cid, 0) + 1
        if kind == "register" and not self.registered:
            self.registered = True
            COUNTERS.registrations += 1
            COUNTERS.last_register = {k: msg.get(k) for k in ("hostname", "version", "proto_version", "engine_id")}
            agent_id = str(uuid.uuid4())
            reply = {
                "type": "auth_success",
                "agent_id": agent_id,
                "host_id": str(uuid.uuid4()),
                "permanent_token": agent_id,
            }
            await self.send(OP_TEXT, json.dumps(reply, separators=(",", ":")).encode())  # as Starlette sends it
            if HEALTH_CHECKS > 0:
                await self.send(OP_TEXT, json.dumps(health_sync(), separators=(",", ":")).encode())
            if POLL_S > 0:
                self.poll_task = asyncio.ensure_future(self.poller())


def health_sync():
    """`health_check_configs_sync` with HEALTH_CHECKS checks against this sink (spec §3.6.1), as a
    host's mix: most healthy (`/bench/health`, 200), every fourth unhealthy by status (404), every
    fifth refused (port 9), so the result paths a steady agent runs are all exercised."""
    scheme = "https" if TLS else "http"
    configs = []
    for i in range(HEALTH_CHECKS):
        url = "%s://127.0.0.1:%d/bench/health" % (scheme, PORT)
        if i % 5 == 4:
            url = "http://127.0.0.1:9/health"
        elif i % 4 == 3:
            url = "%s://127.0.0.1:%d/bench/missing" % (scheme, PORT)
        configs.append({
            "container_id": "%012x" % (0xbe0c0000 + i), "host_id": "sink", "enabled": True, "url": url,
            "method": "GET", "expected_status_codes": "200-299", "timeout_seconds": 5,
            "check_interval_seconds": HEALTH_INTERVAL_S, "follow_redirects": True, "verify_ssl": not TLS,
            "headers_json": None, "auth_config_json": None,
        })
    return {"type": "health_check_configs_sync", "payload": {"configs": configs}}


async def read_head(reader):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await reader.read(4096)
        if not chunk:
            return None
        data += chunk
        if len(data) > HEAD_MAX_BYTES:
            return None
    head, _, _rest = data.partition(b"\r\n\r\n")  # a client sends nothing before our 101
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 3:
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers


def http_reply(writer, status, body, ctype="application/json"):
    writer.write(
        ("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (status, ctype, len(body))).encode()
        + body
    )


async def handle(reader, writer):
    try:
        req = await read_head(reader)
        if req is None:
            return
        method, target, headers = req
        path = target.split("?", 1)[0]
        if method == "GET" and path == "/counters":
            http_reply(writer, "200 OK", json.dumps(COUNTERS.as_json()).encode())
            await writer.drain()
            return
        if path == "/bench/health":
            http_reply(writer, "200 OK", b"ok\n", "text/plain")
            await writer.drain()
            return
        channel = {"/api/agent/ws": "agent", "/api/stats/ws/ingest": "ingest"}.get(path.rstrip("/"))
        if channel == "ingest" and INGEST_STATUS is not None:
            COUNTERS.ingest_rejected += 1
            http_reply(writer, "%d Rejected" % INGEST_STATUS, b"rejected by --ingest-status\n", "text/plain")
            await writer.drain()
            return
        key = headers.get("sec-websocket-key")
        if channel is None or method != "GET" or "websocket" not in headers.get("upgrade", "").lower() or not key:
            http_reply(writer, "404 Not Found", b"not found\n", "text/plain")
            await writer.drain()
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: %s\r\n\r\n" % accept
            ).encode()
        )
        await writer.drain()
        if channel == "agent":
            COUNTERS.connections += 1
        else:
            COUNTERS.ingest_connections += 1
        await Conn(reader, writer, channel).run()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass  # EOF, reset or an oversized frame: the connection ends, the counters stay
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description="DockMon sink for bench/run: accepts agents and counts frames.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    ap.add_argument("--poll", type=float, default=10.0,
                    help="seconds between list_containers commands after auth, as DockMon's poller sends them (0: never; default 10)")
    ap.add_argument("--tls-cert", help="serve TLS (wss://, https://) with this certificate chain (PEM)")
    ap.add_argument("--tls-key", help="the private key of --tls-cert (PEM)")
    ap.add_argument("--ingest-status", type=int,
                    help="answer the stats ingest upgrade with this HTTP status (404: a server without the stats service)")
    ap.add_argument("--health-checks", type=int, default=0,
                    help="agent-side HTTP checks to configure after auth, against this sink (default 0)")
    ap.add_argument("--health-interval", type=int, default=10, help="their interval in seconds (default 10)")
    args = ap.parse_args()
    global POLL_S, INGEST_STATUS, HEALTH_CHECKS, HEALTH_INTERVAL_S, PORT, TLS
    POLL_S = args.poll
    INGEST_STATUS = args.ingest_status
    HEALTH_CHECKS = args.health_checks
    HEALTH_INTERVAL_S = args.health_interval
    TLS = bool(args.tls_cert)
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    server = await asyncio.start_server(handle, args.host, args.port, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    PORT = port
    print("listening %d" % port, flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop
    print(json.dumps(COUNTERS.as_json()), file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
