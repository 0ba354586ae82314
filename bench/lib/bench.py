"""bench/run's engine: builds the agent, grows the lab, measures every contender at every N.

One measurement = start the contender, a fixed warm-up, then a fixed window sampled every second
from /proc (procfs.py), then stop it. Contenders run one at a time, in the same order at every N,
so each sees the same engine and the same lab. Results go to samples.csv and run.json after every
measurement, and report.py turns them into summary.md and memory.svg (also on Ctrl-C, with what
was measured so far).

A contender that cannot start, exits, or (in agent mode) never registers with the sink is recorded
as failed with the tail of its stderr, and the run goes on.
"""
import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import lab
import procfs
import report

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
TAIL_LINES = 20
STOP_GRACE_S = 5.0
SETTLE_S = 2.0  # after the lab grows: the engine finishes starting shims before anything is measured
AGENT_INTERVAL_S = 5  # watch --interval, glances --time: the agent's own stats period (README)
CSV_FIELDS = ["contender", "N", "t", "rss_kib", "pss_kib", "cpu_pct", "threads", "dockerd_cpu_pct", "containerd_cpu_pct"]
BUILTIN = ["agent-docker", "agent-cgroup", "agent-watch", "docker-stats", "glances"]

HELP_EPILOG = """\
contenders (all by default; --contenders picks some, in that order):
  agent-docker   this agent in agent mode, STATS_SOURCE=docker, against bench/sink.py
  agent-cgroup   the same with STATS_SOURCE=cgroup
  agent-watch    dockmon-agent watch --format ndjson --interval 5 > /dev/null
  docker-stats   docker stats --format '{{json .}}' > /dev/null (streaming, the CLI's default)
  glances        glances --quiet --time 5 --export csv (only when glances is on PATH)
  idle           no contender: the engine's own CPU at this N (the baseline; see --idle)
  two builds     --agent LABEL=PATH, repeated: no build; each binary gets its own three contenders,
                 agent-docker-LABEL, agent-cgroup-LABEL and agent-watch-LABEL, run one after the
                 other at every N (the reference is agent-docker-<first LABEL>)
  peers          --peer NAME=image:REF [CMD…]  a container from REF (running CMD if given), on the
                                         host network with the engine's socket mounted; measured
                                         as the tree of docker inspect's .State.Pid
                 --peer NAME=cmd:COMMAND a shell command (sh -c), measured with its children and
                                         the shell (begin COMMAND with `exec` to leave it out)
                 --peer-env NAME=K=V     environment for a peer; '{sink}' in V starts a sink for it
                                         and becomes its http://127.0.0.1:PORT (DOCKMON_URL={sink})
                 --peer-args NAME=ARGS   extra `docker run` arguments for an image peer

examples:
  bench/run --containers 0,10 --window 20
  bench/run --containers 0,25,100 --agent before=/tmp/before/dockmon-agent --agent after=target/…/dockmon-agent \\
            --contenders agent-docker-before,agent-docker-after,agent-cgroup-before,agent-cgroup-after
  bench/run --peer goagent=image:ghcr.io/darthnorse/dockmon-agent:latest \\
            --peer-env goagent=DOCKMON_URL={sink} --peer-env goagent=REGISTRATION_TOKEN=bench-token \\
            --peer-args goagent='-v dmgo:/data'
  bench/run --peer cadvisor=image:gcr.io/cadvisor/cadvisor:v0.49.1 \\
            --peer-args cadvisor='--privileged -v /:/rootfs:ro -v /sys:/sys:ro -v /var/lib/docker:/var/lib/docker:ro'

output: bench/results/<date>-<hostname>/ samples.csv, summary.md, memory.svg, run.json
        (raw/ keeps the build log and each contender's stderr; it is not committed)
"""


class Interrupted(Exception):
    pass


class Failed(Exception):
    """A contender failed; the message is the reason, tail the evidence."""

    def __init__(self, reason, tail=""):
        super().__init__(reason)
        self.tail = tail


# ---------------------------------------------------------------------------------------------
# processes we start

class Tracker:
    """Process groups this run started, mirrored in $BENCH_STATE_DIR/pgids for bench/run's trap."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, "pgids") if state_dir else None
        self.pgids = set()

    def _write(self):
        if self.path:
            with open(self.path + ".tmp", "w") as f:
                f.write("".join("%d\n" % p for p in sorted(self.pgids)))
            os.replace(self.path + ".tmp", self.path)

    def add(self, pgid):
        self.pgids.add(pgid)
        self._write()

    def discard(self, pgid):
        self.pgids.discard(pgid)
        self._write()


def tail_of(path, lines=TAIL_LINES):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


class ProcessHandle:
    """A contender that is a process (and its children), in a session of its own."""

    def __init__(self, tracker, argv, env, log_path, stdout_to_log=False):
        self.tracker = tracker
        self.log_path = log_path
        self.log = open(log_path, "wb")
        try:
            self.popen = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL,
                stdout=self.log if stdout_to_log else subprocess.DEVNULL, stderr=self.log,
                start_new_session=True,
            )
        except OSError as e:
            self.log.close()
            raise Failed("cannot start %s: %s" % (argv[0], e)) from None
        tracker.add(self.popen.pid)

    @property
    def pid(self):
        return self.popen.pid

    def exited(self):
        """None while running, else a description of how it ended."""
        rc = self.popen.poll()
        if rc is None:
            return None
        return "exited with status %d" % rc if rc >= 0 else "killed by signal %d" % -rc

    def stop(self):
        if self.popen.poll() is None:
            for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:  # children left in the group after the leader went
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.tracker.discard(self.popen.pid)
        self.log.close()

    def tail(self):
        return tail_of(self.log_path)


class ContainerHandle:
    """A peer that is a container: measured as the process tree of its init process."""

    def __init__(self, name, pid, log_path):
        self.name = name
        self.pid = pid
        self.log_path = log_path

    def exited(self):
        return None if os.path.exists("/proc/%d" % self.pid) else "container exited"

    def stop(self):
        with open(self.log_path, "w") as f:
            f.write(lab.docker("logs", "--tail", "200", self.name, check=False, timeout=30))
        lab.remove(self.name)

    def tail(self):
        return lab.docker("logs", "--tail", str(TAIL_LINES), self.name, check=False, timeout=30).strip()


class Sink:
    """bench/sink.py on a free port; its counters are read over HTTP."""

    def __init__(self, tracker, log_path):
        # The sink prints `listening PORT` on stdout, into its log.
        argv = [sys.executable, os.path.join(BENCH, "sink.py"), "--port", "0"]
        self.handle = ProcessHandle(tracker, argv, None, log_path, stdout_to_log=True)
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.port is None:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("listening "):
                        self.port = int(line.split()[1])
            if self.handle.exited():
                break
            time.sleep(0.05)
        if self.port is None:
            self.handle.stop()
            raise Failed("the sink did not start", self.handle.tail())
        self.url = "http://127.0.0.1:%d" % self.port

    def counters(self):
        with urllib.request.urlopen(self.url + "/counters", timeout=10) as r:
            return json.load(r)

    def stop(self):
        self.handle.stop()


# ---------------------------------------------------------------------------------------------
# contenders

class Contender:
    needs_sink = False

    def __init__(self, name, unavailable=None):
        self.name = name
        self.unavailable = unavailable  # (reason, tail) when it cannot run at all in this run

    def start(self, ctx, sink, log_path):
        raise NotImplementedError


class AgentMode(Contender):
    needs_sink = True

    def __init__(self, name, source, binary, unavailable):
        super().__init__(name, unavailable)
        self.source = source
        self.binary = binary

    def start(self, ctx, sink, log_path):
        data = tempfile.mkdtemp(prefix="data.", dir=ctx.state_dir)
        env = base_env()
        env.update({
            "DOCKMON_URL": sink.url,
            "REGISTRATION_TOKEN": "bench-token",
            "DATA_PATH": data,
            "LOG_JSON": "false",
            "STATS_SOURCE": self.source,
        })
        return ProcessHandle(ctx.tracker, [self.binary], env, log_path, stdout_to_log=True)


class Command(Contender):
    def __init__(self, name, argv, unavailable=None, env=None):
        super().__init__(name, unavailable)
        self.argv = argv
        self.env = env or {}

    def start(self, ctx, sink, log_path):
        env = base_env()
        env.update({k: v.replace("{sink}", sink.url if sink else "") for k, v in self.env.items()})
        argv = [a.replace("{raw}", ctx.raw).replace("{n}", str(ctx.n)) for a in self.argv]
        return ProcessHandle(ctx.tracker, argv, env, log_path)


class ImagePeer(Contender):
    def __init__(self, name, ref, env, extra):
        super().__init__(name)
        self.ref = ref  # the image, optionally followed by the container's command
        self.env = env
        self.extra = extra
        self.needs_sink = any("{sink}" in kv for kv in env)

    def start(self, ctx, sink, log_path):
        env = [kv.replace("{sink}", sink.url if sink else "") for kv in self.env]
        try:
            cname, pid = lab.run_peer(ctx.run_id, self.name, shlex.split(self.ref), env, self.extra, lab.socket_path())
        except lab.DockerError as e:
            lab.remove("bench-%s-peer-%s" % (ctx.run_id, self.name))
            raise Failed("peer container did not start", str(e)) from None
        return ContainerHandle(cname, pid, log_path)


def base_env():
    """A small, explicit environment: nothing from the caller's shell changes what is measured."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    for k in ("DOCKER_HOST", "DOCKER_CONFIG", "TZ"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


# ---------------------------------------------------------------------------------------------
# build

def build_agent(raw):
    """Builds the release agent; returns (binary, target, None) or (None, target, (reason, tail))."""
    if platform.machine() in ("x86_64", "amd64"):
        target = "x86_64-unknown-linux-musl"
        cmd = ["cargo", "build", "--release", "--target", target]
        rel = os.path.join(target, "release")
    else:
        target = "host (%s)" % platform.machine()
        cmd = ["cargo", "build", "--release"]
        rel = "release"
    target_dir = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    log_path = os.path.join(raw, "build.log")
    note("building the agent: %s (log: %s)" % (" ".join(cmd), os.path.relpath(log_path, REPO)))
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            rc = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
        except FileNotFoundError:
            return None, target, ("cargo is not on PATH", "")
    note("build finished in %.0f s (status %d)" % (time.monotonic() - started, rc))
    if rc != 0:
        errors = [line for line in tail_of(log_path, 400).split("\n") if line.startswith("error")]
        return None, target, ("cargo build failed (status %d)" % rc, "\n".join(errors[:10]) if errors else tail_of(log_path, 8))
    return os.path.join(target_dir, rel, "dockmon-agent"), target, None


# ---------------------------------------------------------------------------------------------
# measuring

class Context:
    def __init__(self, run_id, state_dir, raw, tracker):
        self.run_id = run_id
        self.state_dir = state_dir
        self.raw = raw
        self.tracker = tracker
        self.n = 0


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def sleep_until(deadline, check=None, step=0.25):
    """Sleeps until the monotonic deadline; check() is called every step and may raise."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(step, left))
        if check:
            check()


def measure(ctx, contender, n, warmup, window, rows):
    """Measures one contender at one N; appends its samples to rows and returns its record."""
    rec = {"contender": contender.name, "n": n, "status": "ok", "warmup_s": warmup, "window_s": window,
           "running_containers": None, "loadavg": loadavg(), "notes": []}
    if contender.unavailable:
        rec.update(status="failed", reason=contender.unavailable[0], tail=contender.unavailable[1])
        return rec
    tag = "%s-N%d" % (contender.name, n)
    sink = handle = None
    my_rows = []
    try:
        if contender.needs_sink:
            sink = Sink(ctx.tracker, os.path.join(ctx.raw, "sink-%s.log" % tag))
        if contender.name != "idle":
            handle = contender.start(ctx, sink, os.path.join(ctx.raw, "%s.log" % tag))

        def check():
            if handle is not None:
                how = handle.exited()
                if how:
                    raise Failed("%s %s" % (contender.name, how), handle.tail())

        if contender.name != "idle":
            sleep_until(time.monotonic() + warmup, check)
        if sink is not None:
            c = sink.counters()
            if c["registrations"] == 0:
                raise Failed(
                    "no register frame reached the sink within the %d s warm-up (%d connection(s))" % (warmup, c["connections"]),
                    handle.tail() if handle else "",
                )
        rec["running_containers"] = lab.running_count()
        before = sink.counters() if sink else None
        tree_cpu, dockerd_cpu, containerd_cpu = procfs.CpuMeter(), procfs.CpuMeter(), procfs.CpuMeter()
        sink_cpu = procfs.CpuMeter()
        totals = {"tree": 0, "dockerd": 0, "containerd": 0, "sink": 0}
        t0 = last = time.monotonic()
        t0_wall = time.time()
        t0_self = time.process_time()
        for k in range(0, window + 1):
            if k:
                sleep_until(t0 + k, check)
            procs = procfs.scan()
            now = time.monotonic()
            dt = now - last if k else 0
            last = now
            dockerd, containerd = procfs.engine_pids(procs)
            d_ticks = dockerd_cpu.read(procs, dockerd)
            c_ticks = containerd_cpu.read(procs, containerd)
            s_ticks = sink_cpu.read(procs, procfs.tree(procs, sink.handle.pid)) if sink else 0
            row = {"contender": contender.name, "N": n, "t": k, "rss_kib": "", "pss_kib": "", "cpu_pct": "",
                   "threads": "", "dockerd_cpu_pct": "", "containerd_cpu_pct": ""}
            if handle is not None:
                pids = procfs.tree(procs, handle.pid)
                if not pids:
                    check()
                    raise Failed("%s: its process is gone" % contender.name, handle.tail())
                rss = pss = 0
                for pid in pids:
                    m = procfs.memory_kib(pid)
                    if m:
                        rss += m[0]
                        pss += m[1]
                t_ticks = tree_cpu.read(procs, pids)
                row.update(rss_kib=rss, pss_kib=pss, threads=sum(procs[p].threads for p in pids if p in procs))
                if k:
                    row["cpu_pct"] = round(pct(t_ticks, dt), 2)
                    totals["tree"] += t_ticks
            if k:
                row["dockerd_cpu_pct"] = round(pct(d_ticks, dt), 2)
                row["containerd_cpu_pct"] = round(pct(c_ticks, dt), 2)
                totals["dockerd"] += d_ticks
                totals["containerd"] += c_ticks
                totals["sink"] += s_ticks
                my_rows.append(row)
            else:
                rec["t0_sample"] = row  # the baseline reading: memory at the window's start
        wall = time.monotonic() - t0
        rec["wall_s"] = round(wall, 3)
        rec["sampler_cpu_pct"] = round(100 * (time.process_time() - t0_self) / wall, 3)  # this script's own cost
        rec["running_containers_end"] = lab.running_count()
        if handle is not None:
            rec["cpu_pct"] = round(pct(totals["tree"], wall), 3)
        rec["dockerd_cpu_pct"] = round(pct(totals["dockerd"], wall), 3)
        rec["containerd_cpu_pct"] = round(pct(totals["containerd"], wall), 3)
        if sink is not None:
            rec["sink_cpu_pct"] = round(pct(totals["sink"], wall), 3)
            rec["sink"] = sink_delta(before, sink.counters(), n, wall)
            s = rec["sink"]
            if n > 0 and s["stats_frames"] == 0:
                rec["notes"].append("no container_stats frame in the window")
            if s["connections"] > 0:
                rec["notes"].append("reconnected %d time(s) in the window" % s["connections"])
        foreign = lab.foreign_events(ctx.run_id, t0_wall, t0_wall + wall)
        rec["foreign_events"] = len(foreign)
        if foreign or rec["running_containers"] != rec["running_containers_end"]:
            rec["disturbed"] = True
            rec["notes"].append("activity on the host besides the bench: %d container event(s) of other containers%s, "
                                "running containers %s → %s" % (
                                    len(foreign), " (%s)" % ", ".join(sorted(set(foreign))[:6]) if foreign else "",
                                    rec["running_containers"], rec["running_containers_end"]))
    except Failed as e:
        rec.update(status="failed", reason=str(e), tail=e.tail)
    finally:
        if handle is not None:
            handle.stop()
        if sink is not None:
            sink.stop()
    rows.extend(my_rows)
    return rec


def pct(ticks, seconds):
    return 100.0 * ticks / procfs.CLK_TCK / seconds if seconds > 0 else 0.0


def sink_delta(a, b, n, wall):
    """What the sink received during the window: the difference of two counter readings."""
    kinds = {}
    for k, v in b["kinds"].items():
        was = a["kinds"].get(k, {"frames": 0, "bytes": 0})
        if v["frames"] - was["frames"]:
            kinds[k] = {"frames": v["frames"] - was["frames"], "bytes": v["bytes"] - was["bytes"]}
    ids = {cid: c - a["stats_ids"].get(cid, 0) for cid, c in b["stats_ids"].items() if c - a["stats_ids"].get(cid, 0) > 0}
    stats = kinds.get("event:container_stats", {"frames": 0, "bytes": 0})
    return {
        "kinds": kinds,
        "stats_frames": stats["frames"],
        "stats_bytes": stats["bytes"],
        "bytes_per_sample": round(stats["bytes"] / stats["frames"], 1) if stats["frames"] else None,
        "containers_reported": len(ids),
        "samples_per_container_per_s": round(stats["frames"] / len(ids) / wall, 3) if ids else None,
        "wire_bytes_in": b["wire_bytes_in"] - a["wire_bytes_in"],
        "upstream_bytes_per_s": round((b["wire_bytes_in"] - a["wire_bytes_in"]) / wall, 1),
        "connections": b["connections"] - a["connections"],
        "ingest_frames": kinds.get("ingest", {}).get("frames", 0),
        "examples": {k: b["examples"][k] for k in kinds if k in b["examples"]},
    }


# ---------------------------------------------------------------------------------------------
# the run

def note(msg):
    print("bench: %s" % msg, file=sys.stderr, flush=True)


def parse_list(text):
    try:
        ns = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("expected a comma-separated list of container counts, like 0,10,50") from None
    if not ns or ns[0] < 0:
        raise argparse.ArgumentTypeError("expected counts >= 0")
    return ns


def positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected whole seconds") from None
    if v < 0:
        raise argparse.ArgumentTypeError("expected seconds >= 0")
    return v


def parser():
    ap = argparse.ArgumentParser(
        prog="bench/run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Memory and CPU of dockmon-agent against docker stats and peers, at growing container counts.\n"
        "Needs a Docker engine, root (to read other processes' smaps_rollup), cargo and python3.",
        epilog=HELP_EPILOG,
    )
    ap.add_argument("--containers", type=parse_list, default=[0, 10, 50, 100], metavar="LIST",
                    help="lab container counts, comma-separated (default 0,10,50,100)")
    ap.add_argument("--window", type=positive, default=60, metavar="SECS", help="measured window per contender (default 60)")
    ap.add_argument("--warmup", type=positive, default=10, metavar="SECS", help="warm-up before each window (default 10)")
    ap.add_argument("--idle", type=positive, default=None, metavar="SECS",
                    help="engine baseline window with no contender, per N (default: a quarter of --window, 5 to 15; 0 skips)")
    ap.add_argument("--image", default=lab.DEFAULT_IMAGE, metavar="REF",
                    help="lab image (default %s, built FROM scratch from the host's static busybox; another image is pulled if missing)" % lab.DEFAULT_IMAGE)
    ap.add_argument("--cmd", default=None, metavar="COMMAND",
                    help="lab container command (default `sleep 100000000` for the busybox image, the image's own otherwise)")
    ap.add_argument("--contenders", default=None, metavar="LIST", help="which contenders, comma-separated (default all)")
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=image:REF|NAME=cmd:COMMAND",
                    help="an extra contender (repeatable; see below)")
    ap.add_argument("--peer-env", action="append", default=[], metavar="NAME=K=V", help="environment for a peer (repeatable)")
    ap.add_argument("--peer-args", action="append", default=[], metavar="NAME=ARGS", help="extra `docker run` arguments for an image peer")
    ap.add_argument("--agent-bin", default=None, metavar="PATH", help="measure this agent binary instead of building one")
    ap.add_argument("--agent", action="append", default=[], metavar="LABEL=PATH",
                    help="measure this binary as agent-{docker,cgroup,watch}-LABEL (repeatable, so two builds run side "
                    "by side in one run; no build; not with --agent-bin)")
    ap.add_argument("--reference", default=None, metavar="NAME",
                    help="the contender every ratio is taken to (default agent-docker, with --agent "
                    "agent-docker-<first LABEL>; when it failed at an N, the first of agent-cgroup, agent-watch that ran)")
    ap.add_argument("--out", default=None, metavar="DIR", help="results directory (default bench/results/<date>-<hostname>)")
    return ap


def parse_agents(specs):
    """--agent LABEL=PATH, repeated → [(label, absolute path)] in the order given."""
    agents = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not (sep and label and path) or not all(ch.isalnum() or ch in "._" for ch in label):
            raise SystemExit("bench/run: --agent %r: expected LABEL=PATH, LABEL of letters, digits, . and _" % spec)
        if label in (a[0] for a in agents):
            raise SystemExit("bench/run: --agent %s: the label is given twice" % label)
        agents.append((label, os.path.abspath(path)))
    return agents


def describe_agent(binary, target, unavailable):
    """run.json's record of one agent binary: path, target, size and --version, or why it cannot run."""
    rec = {"binary": binary, "target": target}
    if binary and not unavailable:
        rec["bytes"] = os.path.getsize(binary)
        v = subprocess.run([binary, "--version"], capture_output=True, text=True)
        rec["version"] = v.stdout.strip()
    else:
        rec["unavailable"] = unavailable[0]
    return rec


def agent_contenders(suffix, agent_bin, agent_unavailable):
    """The three contenders of one agent binary, named agent-docker<suffix> and so on."""
    return [
        AgentMode("agent-docker" + suffix, "docker", agent_bin, agent_unavailable),
        AgentMode("agent-cgroup" + suffix, "cgroup", agent_bin, agent_unavailable),
        Command("agent-watch" + suffix, [agent_bin or "dockmon-agent", "watch", "--format", "ndjson", "--interval",
                                         str(AGENT_INTERVAL_S)], agent_unavailable),
    ]


def make_contenders(args, agents):
    """agents: [(suffix, binary, unavailable)]: ("", the one agent) or one ("-LABEL", …) per --agent."""
    peers = {}
    for spec in args.peer:
        name, sep, what = spec.partition("=")
        kind, sep2, value = what.partition(":")
        if not (sep and sep2 and name and value) or kind not in ("image", "cmd"):
            raise SystemExit("bench/run: --peer %r: expected NAME=image:REF or NAME=cmd:COMMAND" % spec)
        if name in BUILTIN or name == "idle" or name.startswith("agent-"):
            raise SystemExit("bench/run: --peer %s: the name is taken by a built-in contender (or agent-…)" % name)
        peers[name] = (kind, value)
    envs, extras = {}, {}
    for spec in args.peer_env:
        name, sep, kv = spec.partition("=")
        if not sep or "=" not in kv or name not in peers:
            raise SystemExit("bench/run: --peer-env %r: expected NAME=K=V for a NAME given with --peer" % spec)
        envs.setdefault(name, []).append(kv)
    for spec in args.peer_args:
        name, sep, rest = spec.partition("=")
        if not sep or name not in peers:
            raise SystemExit("bench/run: --peer-args %r: expected NAME=ARGS for a NAME given with --peer" % spec)
        extras.setdefault(name, []).extend(shlex.split(rest))

    all_ = {}
    if args.idle:
        all_["idle"] = Contender("idle")
    # Side by side: each kind of agent contender for every binary, before the next kind.
    per_agent = [agent_contenders(*a) for a in agents]
    for kind in range(3):
        for contenders in per_agent:
            all_[contenders[kind].name] = contenders[kind]
    all_["docker-stats"] = Command("docker-stats", ["docker", "stats", "--format", "{{json .}}"])
    if shutil.which("glances"):
        all_["glances"] = Command("glances", ["glances", "--quiet", "--time", str(AGENT_INTERVAL_S), "--export", "csv",
                                              "--export-csv-file", "{raw}/glances-N{n}.csv"])
    for name, (kind, value) in peers.items():
        env = envs.get(name, [])
        if kind == "image":
            all_[name] = ImagePeer(name, value, env, extras.get(name, []))
        else:
            c = Command(name, ["sh", "-c", value], env=dict(kv.split("=", 1) for kv in env))
            c.needs_sink = any("{sink}" in kv for kv in env)
            all_[name] = c
    if args.contenders:
        wanted = [c.strip() for c in args.contenders.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in all_]
        if unknown:
            raise SystemExit("bench/run: unknown or unavailable contender(s): %s (available: %s)" % (", ".join(unknown), ", ".join(all_)))
        return [all_[c] for c in (["idle"] if "idle" in all_ and "idle" not in wanted else []) + wanted]
    return list(all_.values())


def results_dir(args):
    if args.out:
        return os.path.abspath(args.out)
    base = os.path.join(BENCH, "results", "%s-%s" % (datetime.date.today().isoformat(), socket.gethostname()))
    out, i = base, 1
    while os.path.exists(os.path.join(out, "run.json")):
        i += 1
        out = "%s-%d" % (base, i)
    return out


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            key = line.split(":")[0].strip()
            if key in ("model name", "Hardware", "Model") and not model:
                model = line.split(":", 1)[1].strip()
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1])
    fs = subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True, text=True).stdout.strip()
    distro = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {"hostname": socket.gethostname(), "cores": os.cpu_count(), "cpu_model": model or platform.machine(),
            "arch": platform.machine(), "kernel": platform.release(), "mem_kib": mem, "distro": distro,
            "cgroup_fs": "cgroup v2" if fs == "cgroup2fs" else "cgroup v1" if fs == "tmpfs" else fs}


def git_describe():
    def git(*a):
        r = subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    head = git("rev-parse", "--short=12", "HEAD")
    dirty = git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no", "--", "src", "Cargo.toml", "Cargo.lock", "build.rs")
    return head + (" with uncommitted changes in src/" if dirty else "")


def main(argv):
    args = parser().parse_args(argv)
    agents = parse_agents(args.agent)
    if agents and args.agent_bin:
        raise SystemExit("bench/run: --agent and --agent-bin do not go together (give --agent LABEL=PATH for each binary)")
    if args.reference is None:
        args.reference = "agent-docker-" + agents[0][0] if agents else "agent-docker"
    if args.idle is None:
        args.idle = max(5, min(15, args.window // 4))
    if args.window < 1:
        raise SystemExit("bench/run: --window must be at least 1 s")
    run_id = os.environ.get("BENCH_RUN_ID") or "%s-%d" % (time.strftime("%H%M%S"), os.getpid())
    state_dir = os.environ.get("BENCH_STATE_DIR") or tempfile.mkdtemp(prefix="dockmon-bench.")
    cmdline = shlex.join([os.environ.get("BENCH_ARGV0") or "bench/run", *argv])
    started_wall, started = time.time(), time.monotonic()

    def on_signal(signum, _frame):
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)  # cleanup must not be cut short by a second Ctrl-C
        raise Interrupted(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    if os.geteuid() != 0:
        note("not root: the memory of the engine's and peers' processes may be unreadable")
    try:
        eng = lab.engine()
    except lab.DockerError as e:
        raise SystemExit("bench/run: cannot reach the Docker engine: %s; start dockerd (e.g. `service docker start`)" % e)

    out = results_dir(args)
    raw = os.path.join(out, "raw")
    os.makedirs(raw, exist_ok=True)
    note("run %s, results in %s" % (run_id, os.path.relpath(out, os.getcwd())))
    tracker = Tracker(state_dir)
    ctx = Context(run_id, state_dir, raw, tracker)
    meta = {
        "run_id": run_id, "command": cmdline, "started": datetime.datetime.fromtimestamp(started_wall).astimezone().isoformat(timespec="seconds"),
        "machine": machine(), "engine": eng, "containers": args.containers, "window_s": args.window, "warmup_s": args.warmup,
        "idle_s": args.idle, "clk_tck": procfs.CLK_TCK, "image": args.image, "reference": args.reference, "interrupted": False,
        "other_running_containers": eng.get("running"), "git": git_describe(), "agent": {},
    }
    records, rows = [], []

    def save():
        meta["records"] = records
        meta["elapsed_s"] = round(time.monotonic() - started, 1)
        with open(os.path.join(out, "run.json.tmp"), "w") as f:
            json.dump(meta, f, indent=1)
        os.replace(os.path.join(out, "run.json.tmp"), os.path.join(out, "run.json"))
        with open(os.path.join(out, "samples.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, CSV_FIELDS)
            w.writeheader()
            w.writerows(rows)

    code = 0
    try:
        if agents:
            meta["agents"], runs = {}, []
            for label, agent_bin in agents:
                unavailable = None
                if not os.access(agent_bin, os.X_OK):
                    unavailable = ("--agent %s=%s is not an executable file" % (label, agent_bin), "")
                    note("agent %s unavailable: %s; its contenders are recorded as failed" % (label, unavailable[0]))
                meta["agents"][label] = describe_agent(agent_bin, "given with --agent", unavailable)
                runs.append(("-" + label, agent_bin, unavailable))
        else:
            if args.agent_bin:
                agent_bin, target, unavailable = os.path.abspath(args.agent_bin), "given with --agent-bin", None
                if not os.access(agent_bin, os.X_OK):
                    unavailable = ("--agent-bin %s is not an executable file" % args.agent_bin, "")
            else:
                agent_bin, target, unavailable = build_agent(raw)
            meta["agent"] = describe_agent(agent_bin, target, unavailable)
            if unavailable:
                note("agent unavailable: %s; its contenders are recorded as failed" % unavailable[0])
            runs = [("", agent_bin, unavailable)]
        contenders = make_contenders(args, runs)
        meta["contenders"] = [c.name for c in contenders]
        if args.cmd is not None:
            cmd = shlex.split(args.cmd)
        else:
            cmd = lab.DEFAULT_CMD if args.image == lab.DEFAULT_IMAGE else []
        meta["lab_cmd"] = cmd
        lab.ensure_image(args.image)
        lablet = lab.Lab(run_id, args.image, cmd)
        save()
        for n in args.containers:
            ctx.n = n
            if n > lablet.count:
                note("starting lab containers up to N=%d" % n)
                lablet.grow_to(n)
                time.sleep(SETTLE_S)
            for c in contenders:
                window = args.idle if c.name == "idle" else args.window
                note("N=%d %s: %s%d s window" % (n, c.name, "" if c.name == "idle" else "%d s warm-up, " % args.warmup, window))
                rec = measure(ctx, c, n, args.warmup, window, rows)
                records.append(rec)
                note("N=%d %s: %s" % (n, c.name, report.one_line(rec, rows)))
                save()
    except Interrupted as e:
        note("interrupted (%s): cleaning up; the summary covers what was measured" % e)
        meta["interrupted"] = True
        code = 130
    except lab.DockerError as e:
        note("docker failed: %s" % e)
        meta["error"] = str(e)
        code = 1
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        removed = lab.remove_all(run_id)
        note("removed %d container(s)" % removed)
        for pgid in list(tracker.pgids):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            tracker.discard(pgid)
        save()
        report.generate(out)
        note("wrote %s/{samples.csv,summary.md,memory.svg,run.json} in %.0f s" % (os.path.relpath(out, os.getcwd()), time.monotonic() - started))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
