#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/seeds/<target>/ from the test fixtures
(tests/fixtures) and a few hand-written inputs below. Deterministic: re-running it gives the same
files, so the result is committed and `cargo test --lib` in fuzz/ replays it on stable.

Each target's input format (a leading flags byte, NUL-separated fields) is described in the
module doc of fuzz/src/<target>.rs; the seeds here follow it.
"""
import base64
import hashlib
import json
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "fuzz", "seeds")
# Fixture files larger than this are left out of the committed seeds (the fuzzer reaches the same
# code with the smaller ones; libFuzzer's default -max_len is 4096 anyway).
MAX_SEED = 16 * 1024

seeds = {}


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_SEED:
        return
    seeds.setdefault(target, {})[hashlib.sha1(data).hexdigest()[:16]] = data


def fixture_files(*parts):
    base = os.path.join(FIX, *parts)
    for dirpath, _, names in sorted(os.walk(base)):
        for n in sorted(names):
            p = os.path.join(dirpath, n)
            if n.endswith((".md", ".py", ".sh", ".tsv")):
                continue
            with open(p, "rb") as f:
                yield p, f.read()


def read(*parts):
    p = os.path.join(FIX, *parts)
    if not os.path.exists(p):
        return None
    with open(p, "rb") as f:
        return f.read()


# ---- http_head: flags byte (bit 0 HEAD request, bits 1-2 capture set), then the head ----
heads = [
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/20.10.24 (linux)\r\nDate: Sun, 06 Dec 2026 23:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 204 No Content\r\nServer: Docker\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\n\r\n",
    b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{\"message\":\"No such image\"}\n",
    b"HTTP/1.1 302 Found\r\nLocation: /health?x=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
    b"HTTP/1.1 200 Connection established\r\n\r\n",
    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
]
for i, h in enumerate(heads):
    add("http_head", bytes([i % 8]) + h)

# ---- http_chunked: a read-size seed byte, then the body ----
for i, body in enumerate([
    b"5\r\nhello\r\n0\r\n\r\n",
    b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n",
    b"a\nabcdefghij\n0\n\n",
    b"0\r\n\r\nNEXT",
    b"FFFFFFFFFFFFFFFF\r\n",
    b"1\r\nx\r\n" * 20 + b"0\r\n\r\n",
]):
    add("http_chunked", bytes([i * 37 % 256]) + body)


# ---- ws_frame: flags (bit 0 large payload cap, bit 1 large message buffer), then server frames ----
def frame(op, payload, fin=True):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    if n < 126:
        h = bytes([b0, n])
    elif n < 65536:
        h = bytes([b0, 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, 127]) + struct.pack(">Q", n)
    return h + payload


auth = json.dumps({"type": "auth_success", "agent_id": "a1", "host_id": "h1", "permanent_token": "a1"}).encode()
add("ws_frame", b"\x03" + frame(1, auth))
add("ws_frame", b"\x03" + frame(1, b"{\"type\":", False) + frame(9, b"ping") + frame(0, b"\"x\"}"))
add("ws_frame", b"\x02" + frame(2, bytes(range(200)), False) + frame(0, b"\xff" * 10))
add("ws_frame", b"\x00" + frame(8, struct.pack(">H", 1000) + b"bye"))
add("ws_frame", b"\x00" + frame(8, struct.pack(">H", 1011)) + frame(10, b""))
add("ws_frame", b"\x03" + frame(1, "é".encode()[:1], False) + frame(0, "é".encode()[1:]))
add("ws_frame", b"\x01" + frame(1, b"x" * 300))
add("ws_frame", b"\x00" + bytes([0x81, 127]) + struct.pack(">Q", 1 << 63))

# ---- ws_handshake: the upgrade answer; @@ stands for the right accept value ----
for h in [
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: @@\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-accept: @@\r\n\r\n\x81\x02{}",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: @@\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
]:
    add("ws_handshake", h)

# ---- dockmon_message: backend frames (spec section 3) ----
for m in [
    {"type": "command", "command": "list_containers", "id": "c1"},
    {"type": "container_operation", "correlation_id": "op1", "payload": {"action": "stop", "container_id": "abc123", "timeout": 10}},
    {"type": "container_operation", "id": "op2", "payload": {"action": "get_logs", "container_id": "abc", "tail": 1e9}},
    {"type": "container_operation", "id": "op3", "payload": "nope"},
    {"type": "command", "command": "update_container", "id": "u1", "payload": {"container_id": "abc", "new_image": "nginx:1.27"}},
    {"type": "command", "command": "deploy_compose", "id": "d1", "payload": {"deployment_id": "x", "project_name": "p", "compose_content": "services: {}"}},
    {"type": "command", "command": "frobnicate", "id": "z"},
    {"type": "health_check_configs_sync", "payload": {"configs": []}},
    {"type": "shell_session", "payload": {"action": "start", "session_id": "s1", "container_id": "abc"}},
    {"type": "auth_error", "error": "invalid token"},
    {"type": "command", "id": ""},
]:
    add("dockmon_message", json.dumps(m))
add("dockmon_message", "{\"type\":\"command\",\"id\":\"\\u00e9\",\"command\":\"list_containers\"}")

# ---- dockmon_payload: selector (0 update, 1 self_update, 2 cleanup.json, 3 deploy, 4 image refs) ----
for sel, p in [
    (0, {"container_id": "abc123", "new_image": "nginx:1.27", "stop_timeout": 30, "health_timeout": 60, "registry_auth": {"username": "u", "password": "p"}}),
    (0, {"container_id": "", "new_image": "x"}),
    (1, {"image": "ghcr.io/dockmon/agent:1.2", "version": "1.2", "binary_url": "https://x/y", "checksum": "sha256:00"}),
    (2, {"old_container_id": "aaa", "old_container_name": "dockmon-agent", "new_container_id": "bbb", "temp_name": "dockmon-agent-new", "original_name": "dockmon-agent"}),
    (3, {"deployment_id": "d", "project_name": "web", "compose_content": "services:\n  a:\n    image: busybox\n", "env_files": {".env": "A=1", "prod.env": "B=2"}, "action": "up", "profiles": ["debug"]}),
    (3, {"deployment_id": "d", "env_file_content": "A=1\n", "env_files": {"../x": "y"}}),
]:
    add("dockmon_payload", bytes([sel]) + json.dumps(p).encode())
add("dockmon_payload", b"\x04nginx:1.27\ndocker.io/library/nginx:latest")
add("dockmon_payload", b"\x04ghcr.io/Org/Agent@sha256:00\nlocalhost:5000/agent")

# ---- docker_stats: one document, or two lines of a stream ----
stats = []
for p, data in fixture_files("stats"):
    add("docker_stats", data)
    try:
        stats.append(json.dumps(json.loads(data), separators=(",", ":")).encode())
    except ValueError:
        pass
for p, data in fixture_files("cgroup", "v1", "docker"):
    add("docker_stats", data)
for a, b in zip(stats, stats[1:]):
    add("docker_stats", a + b"\n" + b)

# ---- docker_list: read-size seed byte (bit 7: large element cap), then the list body ----
lst = read("docker", "list-four.json")
if lst:
    add("docker_list", b"\x80" + lst)
    add("docker_list", b"\x07" + lst)
add("docker_list", b"\x80[]")
add("docker_list", b"\x80[{\"Id\":\"a\",\"Names\":[\"/x\"],\"State\":\"running\"},[1,\"]\"],{}]")

# ---- docker_logs: flags (bit 0 TTY, bits 1-2 cap, bit 3 piece), then the body ----
mux = read("docker", "logs-mux.bin")
if mux:
    for f in (0x00, 0x04, 0x06, 0x0a):
        add("docker_logs", bytes([f]) + mux)
add("docker_logs", b"\x01line one\nline two\nno newline")
add("docker_logs", b"\x00" + b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n" + b"\x02\x00\x00\x00\x00\x00\x00\x04err\n" + b"\x03\x00\x00\x00\x00\x00\x00\x03bad")

# ---- docker_events: read-size seed byte (bit 0: large line cap), then the stream ----
events = [
    {"status": "start", "id": "abc", "from": "busybox", "Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"image": "busybox", "name": "dmt-x"}}, "scope": "local", "time": 1765062000, "timeNano": 1765062000123456789},
    {"Type": "container", "Action": "health_status: healthy", "Actor": {"ID": "abc", "Attributes": {}}, "time": 1},
    {"Type": "container", "Action": "die", "Actor": {"ID": "abc", "Attributes": {"exitCode": "3"}}},
]
stream = b"".join(json.dumps(e).encode() + b"\n" for e in events)
add("docker_events", b"\x01" + stream)
add("docker_events", b"\x01" + stream.replace(b"\n", b"\r\n") + b"partial")
add("docker_events", b"\x01{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"a1\"}\n{\"errorDetail\":{\"message\":\"denied\"},\"error\":\"denied\"}\n")
if stats:
    add("docker_events", b"\x01" + b"\n".join(stats[:2]) + b"\n")

# ---- dns_answer: flags (bit 0 AAAA), the name, NUL, the answer ----
def qname(q):
    at, labels = 12, []
    while at < len(q) and q[at]:
        n = q[at]
        labels.append(q[at + 1:at + 1 + n].decode())
        at += 1 + n
    qtype = struct.unpack(">H", q[at + 1:at + 3])[0] if at + 3 <= len(q) else 1
    return ".".join(labels), qtype


dns_dir = os.path.join(FIX, "dns")
if os.path.isdir(dns_dir):
    for n in sorted(os.listdir(dns_dir)):
        if n.endswith(".query.bin"):
            case = n[: -len(".query.bin")]
            q = read("dns", n)
            a = read("dns", case + ".answer.bin")
            if q and a:
                name, qtype = qname(q)
                add("dns_answer", bytes([1 if qtype == 28 else 0]) + name.encode() + b"\0" + a)

# ---- dns_conf: a name, NUL, resolv.conf or hosts text ----
add("dns_conf", b"dockmon.lan\0# generated\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nsearch lan\noptions ndots:2 timeout:3 attempts:4 rotate\n")
add("dns_conf", b"Localhost.\0127.0.0.1\tlocalhost\n::1 localhost ip6-localhost # comment\n192.168.1.5 dockmon.lan dockmon\n10.0.0.1 localhost\n")
add("dns_conf", b"2001:db8::1\0nameserver 192.0.2.53\n")

# ---- cgroup: one cgroup or procfs file ----
for p, data in fixture_files("cgroup"):
    if not p.endswith(".json"):
        add("cgroup", data)

# ---- procfs: a hostname, NUL, one /proc file ----
for base in ("host", "cgroup"):
    for p, data in fixture_files(base):
        if p.endswith(".json"):
            continue
        add("procfs", b"0123456789ab\0" + data)
add("procfs", b"web-1\0" + b"12:memory:/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n0::/system.slice/docker-0123456789abcdef.scope\n")
add("procfs", b"\0Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")

# ---- board: flags (bits 0-2: which files exist; bit 3: select and describe too), model, product, vendor, cpuinfo, arch, overrides ----
boards = os.path.join(FIX, "boards")
if os.path.isdir(boards):
    for b in sorted(os.listdir(boards)):
        d = os.path.join(boards, b)
        if not os.path.isdir(d):
            continue
        model = read("boards", b, "proc", "device-tree", "model")
        product = read("boards", b, "sys", "class", "dmi", "id", "product_name")
        vendor = read("boards", b, "sys", "class", "dmi", "id", "sys_vendor")
        cpuinfo = read("boards", b, "proc", "cpuinfo") or b""
        arch = b"x86_64" if b == "amd64" else b"aarch64"
        flags = (1 if model is not None else 0) | (2 if product is not None else 0) | (4 if vendor is not None else 0)
        fields = [model or b"", product or b"", vendor or b"", cpuinfo, arch]
        add("board", bytes([flags]) + b"\0".join(fields) + b"\0")
        add("board", bytes([flags | 8]) + b"\0".join(fields) + b"\0DOCKMON_BOARD=rpi4\nSTATS_INTERVAL=1m30s\nSTATS_IN_FLIGHT=999999\n")

# ---- config: NAME=value lines, NUL, the token file (no NUL: no file) ----
add("config", "DOCKMON_URL=https://dockmon.lan:8443\nREGISTRATION_TOKEN=reg-0123456789\nLOG_LEVEL=debug\nRECONNECT_INITIAL=1s\nRECONNECT_MAX=5m\nINSECURE_SKIP_VERIFY=true\nAGENT_NAME=pi\nSTATS_SOURCE=cgroup\n")
add("config", "DOCKMON_URL=http://10.0.0.5\nDATA_PATH=/data\nHTTPS_PROXY=http://user:secretpw@proxy:3128\nNO_PROXY=localhost,.lan,10.0.0.0/8\n\0perm_0123456789abcdef\n")
add("config", "DOCKMON_URL=wss://[::1]:9/x\nPERMANENT_TOKEN=tok:abc-def_0123456789\nFORCE_UNIQUE_REGISTRATION=1\nDOCKER_HOST=tcp://docker:2376\nDOCKER_TLS_VERIFY=1\n")
add("config", "DOCKMON_URL=https://u:p@h/?q#f\nRECONNECT_INITIAL=1.5h2m3.25s\n")

# ---- compose_yaml: a compose file ----
for p, data in fixture_files("compose"):
    if p.endswith((".yml", ".yaml")):
        add("compose_yaml", data)
add("compose_yaml", "x: &a [*a]\n")
add("compose_yaml", "a: &a {b: 1}\nservices:\n  s:\n    <<: *a\n    image: busybox\n    depends_on: [t]\n  t:\n    image: busybox\n    network_mode: service:s\n")

# ---- compose_interp: text ----
for p, data in fixture_files("compose"):
    if p.endswith(".env"):
        add("compose_interp", data)
for t in ["${A}-$A-${B:-def}-${EMPTY:-x}-${EMPTY-x}-${B:?need B}-$$A", "${A:+set}${B+x}", "sh -c 'echo \"hi there\"' \\'x", "512m", "1h2m3.5s", "export K=\"a\\nb\"\n# c\nX='y z'\n", "My Project_1"]:
    add("compose_interp", t)

# ---- health: selector (0 config, 1 expected statuses, 2 URL and redirect) ----
add("health", b"\0" + json.dumps({"container_id": "abc123", "host_id": "h", "enabled": True, "url": "http://web:80/health", "method": "GET", "expected_status_codes": "200-299,301", "timeout_seconds": 5, "check_interval_seconds": 30, "follow_redirects": True, "verify_ssl": False, "headers_json": "{\"X-A\":\"1\"}", "auth_config_json": "{\"type\":\"basic\",\"username\":\"u\",\"password\":\"p\"}"}).encode())
add("health", b"\0" + json.dumps({"container_id": "abc", "url": "https://x/", "method": "POST", "headers_json": "{\"X\":\"a\\r\\nInjected: 1\"}", "auth_config_json": "{\"type\":\"bearer\",\"token\":\"t\"}"}).encode())
for t in ["200", "200, 201,204", "200-299", "500-400,abc,,", "0-65535", ",".join(str(200 + i) for i in range(20))]:
    add("health", b"\1" + t.encode())
for t in ["http://web:8080/health?x=1#f\n../other?y", "https://[::1]/\n//elsewhere:81/p", "http://h\n?q", "HTTP://H:65535/a/./b/../c\n/abs"]:
    add("health", b"\2" + t.encode())

# ---- shell: selector (even: payload; odd: exec output), then the bytes ----
for p in [
    {"action": "start", "session_id": "s1", "container_id": "abc"},
    {"action": "data", "session_id": "s1", "data": base64.b64encode(b"ls -l\r").decode()},
    {"action": "resize", "session_id": "s1", "rows": 24, "cols": 80},
    {"action": "close", "session_id": "s1"},
    {"action": "data", "session_id": "s1", "data": "not base64!"},
]:
    add("shell", b"\0" + json.dumps(p).encode())
add("shell", b"\x01OCI runtime exec failed: exec failed: unable to start container process: exec: \"/bin/sh\": stat /bin/sh: no such file or directory: unknown\r\n")
add("shell", b"\x03\x1b[?2004h/ # \x1b[6nls\r\nbin  dev  etc\r\n" + "é€".encode())

if __name__ == "__main__":
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    total = 0
    for target, files in sorted(seeds.items()):
        d = os.path.join(OUT, target)
        os.makedirs(d)
        for name, data in sorted(files.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            total += len(data)
        print(f"{target}: {len(files)} seeds", file=sys.stderr)
    print(f"{total} bytes in {OUT}", file=sys.stderr)
