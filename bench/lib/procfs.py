"""What the bench reads from /proc: process trees, their memory and their CPU time.

Memory comes from /proc/<pid>/smaps_rollup (Rss and Pss, KiB; Linux 4.14+), falling back to
/proc/<pid>/status VmRSS (PSS then equals RSS) when smaps_rollup is missing or unreadable. CPU is
utime + stime from /proc/<pid>/stat (fields 14 and 15, clock ticks), threads field 20.

A process tree is a root and every descendant found through the ppid of each process in one scan
of /proc. CPU of a tree is summed per process from the first reading each meter takes: a process
that exits between two readings loses its last slice (at most one sample interval), a process born
inside the window counts from its birth.
"""
import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Proc:
    __slots__ = ("pid", "ppid", "comm", "ticks", "threads", "start")

    def __init__(self, pid, ppid, comm, ticks, threads, start):
        self.pid = pid
        self.ppid = ppid
        self.comm = comm
        self.ticks = ticks
        self.threads = threads
        self.start = start


def read_proc(pid):
    """One /proc/<pid>/stat as a Proc, or None if the process is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # comm is in parentheses and may itself hold spaces or ')': split at the last ')'.
    lpar, rpar = raw.find("("), raw.rfind(")")
    if lpar < 0 or rpar < 0:
        return None
    comm = raw[lpar + 1 : rpar]
    f = raw[rpar + 2 :].split()
    # f[0] is field 3 (state): field k is f[k - 3].
    try:
        return Proc(pid, int(f[1]), comm, int(f[11]) + int(f[12]), int(f[17]), int(f[19]))
    except (IndexError, ValueError):
        return None


def scan():
    """Every process on the host: {pid: Proc}."""
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            p = read_proc(int(name))
            if p is not None:
                procs[p.pid] = p
    return procs


def tree(procs, root):
    """The pids of root and all its descendants present in procs (root first); [] if root is gone."""
    if root not in procs:
        return []
    children = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def memory_kib(pid):
    """(rss_kib, pss_kib) of one process, or None if it is gone."""
    try:
        with open("/proc/%d/smaps_rollup" % pid, "rb") as f:
            rss = pss = None
            for line in f:
                if line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
            if rss is not None:
                return rss, pss if pss is not None else rss
    except OSError:
        pass
    try:
        with open("/proc/%d/status" % pid, "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    v = int(line.split()[1])
                    return v, v
        return 0, 0  # a kernel thread or a zombie: no memory of its own
    except OSError:
        return None


def uptime_ticks():
    """Clock ticks since boot (the unit of a process's start time, stat field 22)."""
    with open("/proc/uptime") as f:
        return int(float(f.read().split()[0]) * CLK_TCK)


def engine_pids(procs):
    """(dockerd pids, containerd pids including every containerd-shim*).

    comm is cut to 15 characters by the kernel, so containerd-shim-runc-v2 shows as
    containerd-shim."""
    dockerd, containerd = [], []
    for p in procs.values():
        if p.comm == "dockerd":
            dockerd.append(p.pid)
        elif p.comm == "containerd" or p.comm.startswith("containerd-shim"):
            containerd.append(p.pid)
    return dockerd, containerd


class CpuMeter:
    """CPU ticks spent by a changing set of processes since the first reading."""

    def __init__(self):
        self.seen = {}  # (pid, start time) -> ticks at the last reading
        self.primed = False
        self.baseline_at = 0  # clock ticks since boot at the first reading

    def read(self, procs, pids):
        """Ticks spent by pids since the previous reading (0 for the first, which is the baseline)."""
        if not self.primed:
            self.baseline_at = uptime_ticks()
        spent = 0
        for pid in pids:
            p = procs.get(pid)
            if p is None:
                continue
            key = (pid, p.start)
            before = self.seen.get(key)
            if before is None:
                # Born after the baseline: all of its time counts; older but new to the set: none.
                born_inside = self.primed and p.start >= self.baseline_at
                before = 0 if born_inside else p.ticks
            spent += max(0, p.ticks - before)
            self.seen[key] = p.ticks
        first = not self.primed
        self.primed = True
        return 0 if first else spent
