"""The Docker side of the bench: the engine's description, the lab image and lab containers.

Everything the bench creates carries the label `dockmon-bench.run=<run id>` and a name starting
with `bench-<run id>-`, so `remove_all` (and bench/run's trap) finds exactly what this run made and
nothing else. The CLI is used rather than the API: the bench must run wherever `docker` does.
"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import tempfile

LABEL = "dockmon-bench.run"
DEFAULT_IMAGE = "dmtest/busybox:local"  # tests/support/mod.rs builds the same image
DEFAULT_CMD = ["sleep", "100000000"]
START_PARALLEL = 4  # docker run CLIs at once: enough to hide the CLI's start-up on 2 cores


class DockerError(Exception):
    pass


def docker(*args, timeout=120, check=True):
    """Runs the docker CLI and returns its stdout; DockerError with its stderr on failure."""
    try:
        r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise DockerError("the docker CLI is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise DockerError("docker %s: no answer within %d s" % (" ".join(args[:2]), timeout)) from None
    if check and r.returncode != 0:
        raise DockerError("docker %s: %s" % (" ".join(args[:3]), (r.stderr or r.stdout).strip()))
    return r.stdout


def engine():
    """The engine's description for the summary header, or DockerError if it cannot be reached."""
    fmt = (
        '{"version":{{json .ServerVersion}},"cgroup":{{json .CgroupVersion}},"driver":{{json .Driver}},'
        '"os":{{json .OperatingSystem}},"ncpu":{{json .NCPU}},"mem":{{json .MemTotal}},'
        '"running":{{json .ContainersRunning}},"cgroup_driver":{{json .CgroupDriver}}}'
    )
    info = json.loads(docker("info", "--format", fmt, timeout=30))
    info["api"] = docker("version", "--format", "{{.Server.APIVersion}}", timeout=30).strip()
    return info


def running_count():
    return len(docker("ps", "-q", timeout=30).split())


def ensure_image(image):
    """Makes the lab image available: builds the FROM-scratch busybox image, or pulls another one."""
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0:
        return
    if image != DEFAULT_IMAGE:
        docker("pull", image, timeout=900)
        return
    busybox = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)
    if busybox is None:
        raise DockerError("the lab image needs a static busybox: apt-get install busybox-static")
    d = tempfile.mkdtemp(prefix="dockmon-bench-image.")
    try:
        shutil.copy(busybox, os.path.join(d, "busybox"))
        with open(os.path.join(d, "Dockerfile"), "w") as f:
            f.write('FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["/bin/sh"]\n')
        r = subprocess.run(
            ["docker", "build", "-q", "-t", image, d],
            capture_output=True, text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        if r.returncode != 0:
            raise DockerError("building %s: %s" % (image, r.stderr.strip()))
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Lab:
    """The lab containers of one run: grows to N, never shrinks (the bench walks N upwards)."""

    def __init__(self, run_id, image, cmd):
        self.run_id = run_id
        self.image = image
        self.cmd = cmd
        self.count = 0

    def grow_to(self, n):
        todo = list(range(self.count + 1, n + 1))

        def start(i):
            docker(
                "run", "-d", "--name", "bench-%s-lab-%d" % (self.run_id, i), "--label", "%s=%s" % (LABEL, self.run_id),
                self.image, *self.cmd,
            )

        pool = concurrent.futures.ThreadPoolExecutor(START_PARALLEL)
        try:
            for fut in [pool.submit(start, i) for i in todo]:
                fut.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C: no new starts
        self.count = max(self.count, n)


def run_peer(run_id, name, image_and_cmd, env, extra_args, socket_path):
    """Starts a peer container (socket mounted, host network); returns (container name, host pid).

    image_and_cmd is the image, then optionally the command to run in it."""
    cname = "bench-%s-peer-%s" % (run_id, name)
    args = ["run", "-d", "--name", cname, "--label", "%s=%s" % (LABEL, run_id), "--network", "host",
            "-v", "%s:%s" % (socket_path, "/var/run/docker.sock")]
    for kv in env:
        args += ["-e", kv]
    args += list(extra_args) + list(image_and_cmd)
    ensure_image(image_and_cmd[0])
    docker(*args, timeout=300)
    pid = int(docker("inspect", "-f", "{{.State.Pid}}", cname, timeout=30).strip() or 0)
    if pid <= 0:
        logs = docker("logs", "--tail", "20", cname, timeout=30, check=False)
        raise DockerError("peer container %s is not running: %s" % (cname, logs.strip()))
    return cname, pid


def foreign_events(run_id, since, until):
    """Actions of container events between two wall-clock times from containers this run did not make.

    The engine keeps its recent events (a ring of 256 in Docker 20.10), enough for one window; a
    foreign event means someone else used the engine while we measured it."""
    out = docker("events", "--since", "%.3f" % since, "--until", "%.3f" % until, "--filter", "type=container",
                 "--format", "{{.Actor.Attributes.name}} {{.Action}}", timeout=30, check=False)
    ours = "bench-%s-" % run_id
    return [line.split(" ", 1)[1].split(":")[0] for line in out.splitlines() if " " in line and not line.startswith(ours)]


def remove(name):
    docker("rm", "-f", name, timeout=120, check=False)


def remove_all(run_id):
    ids = docker("ps", "-aq", "--filter", "label=%s=%s" % (LABEL, run_id), timeout=60, check=False).split()
    # One at a time: Docker 20.10.24 (Debian 12) can deadlock when two running containers on one
    # network exit at once (moby/moby#46661), and `docker rm -f a b c...` removes in parallel.
    for cid in ids:
        docker("rm", "-f", cid, timeout=120, check=False)
    return len(ids)


def socket_path():
    """The engine's unix socket, as the CLI would find it (DOCKER_HOST=unix://… or the default)."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://"):]
    return "/var/run/docker.sock"
