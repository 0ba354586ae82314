"""run.json + samples.csv → summary.md and memory.svg. Stdlib only; safe to rerun on old results:

    python3 bench/lib/report.py bench/results/<date>-<hostname>

Figures, per contender and N, from the samples of the window only (never the warm-up):
  RSS median / max, PSS median   sum over the contender's process tree, 1 s samples
  RSS per container              (RSS median(N) − RSS median(N0)) / (N − N0), N0 the smallest N the
                                 contender was measured at (0 by default)
  CPU %                          the tree's utime+stime over the whole window / the window (100 = one
                                 core); the mean, not the median of 1 s samples (see the notes)
  engine CPU %                   the same for dockerd + containerd + containerd-shim* in the window
  engine − idle                  minus the `idle` run at the same N (the engine with no contender)
  B / container-sample           payload bytes of container_stats frames / their number (the sink)
Ratios divide by the reference contender at the same N, in the same run.
"""
import csv
import json
import os
import statistics
import sys

import svgplot

FALLBACK_REFERENCES = ["agent-docker", "agent-cgroup", "agent-watch"]


def load(out):
    with open(os.path.join(out, "run.json")) as f:
        meta = json.load(f)
    rows = []
    path = os.path.join(out, "samples.csv")
    if os.path.exists(path):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    return meta, rows


def series(rows, contender, n, field):
    out = []
    for r in rows:
        if r["contender"] == contender and int(r["N"]) == n and r[field] != "":
            out.append(float(r[field]))
    return out


def figures(meta, rows):
    """{(contender, n): dict of figures} for every successful record."""
    figs = {}
    for rec in meta.get("records", []):
        if rec["status"] != "ok":
            continue
        c, n = rec["contender"], rec["n"]
        f = {"rec": rec}
        rss, pss = series(rows, c, n, "rss_kib"), series(rows, c, n, "pss_kib")
        cpu, threads = series(rows, c, n, "cpu_pct"), series(rows, c, n, "threads")
        if rss:
            f.update(rss_med=statistics.median(rss), rss_max=max(rss), pss_med=statistics.median(pss),
                     threads_max=max(threads), threads_med=statistics.median(threads))
        if cpu:
            f.update(cpu_med_1s=statistics.median(cpu), cpu_p90_1s=sorted(cpu)[int(0.9 * (len(cpu) - 1))])
        if "cpu_pct" in rec:
            f["cpu"] = rec["cpu_pct"]
        f["engine"] = rec.get("dockerd_cpu_pct", 0) + rec.get("containerd_cpu_pct", 0)
        sink = rec.get("sink")
        if sink and sink.get("bytes_per_sample") is not None:
            f["bytes_per_sample"] = sink["bytes_per_sample"]
        figs[(c, n)] = f
    for (c, n), f in figs.items():
        idle = figs.get(("idle", n))
        if idle and c != "idle":
            f["engine_minus_idle"] = f["engine"] - idle["engine"]
        if "rss_med" in f:
            base_n = min((m for (cc, m), g in figs.items() if cc == c and "rss_med" in g), default=n)
            if n > base_n:
                f["rss_per_container"] = (f["rss_med"] - figs[(c, base_n)]["rss_med"]) / (n - base_n)
                f["rss_per_container_base"] = base_n
    return figs


def fallback_references(wanted):
    """Stand-ins for the reference: the other agent contenders of the same binary (`-LABEL` kept)."""
    suffix = wanted[len("agent-docker"):] if wanted.startswith("agent-docker") else ""
    return [r + suffix for r in FALLBACK_REFERENCES]


def reference_for(meta, figs, n):
    wanted = meta.get("reference") or "agent-docker"
    for c in [wanted] + [r for r in fallback_references(wanted) if r != wanted]:
        if (c, n) in figs and "rss_med" in figs[(c, n)]:
            return c
    return None


def mib(kib):
    v = kib / 1024
    return "%.2f MiB" % v if v < 10 else "%.1f MiB" % v


def num(v, digits=2):
    return ("%%.%df" % digits) % v


def ratio(v, ref, signed=False):
    if v is None or ref is None or ref <= 0 or (signed and v < 0):
        return ""
    r = v / ref
    return " · %s×" % ("%.2f" % r if r < 10 else "%.0f" % r)


def cell(f, ref, key, render):
    v = f.get(key)
    if v is None:
        return "–"
    return render(v) + (ratio(v, ref.get(key) if ref else None, signed=key in ("engine_minus_idle", "rss_per_container")))


def one_line(rec, rows):
    """A progress line for the terminal."""
    if rec["status"] != "ok":
        return "FAILED: %s" % rec["reason"]
    f = figures({"records": [rec]}, rows).get((rec["contender"], rec["n"]), {})
    parts = []
    if "rss_med" in f:
        parts.append("RSS median %s (max %s)" % (mib(f["rss_med"]), mib(f["rss_max"])))
    if "cpu" in f:
        parts.append("CPU %.2f %%" % f["cpu"])
    parts.append("engine %.2f %%" % f["engine"])
    if "bytes_per_sample" in f:
        s = rec["sink"]
        parts.append("%.0f B/sample, %d container(s) reported" % (f["bytes_per_sample"], s["containers_reported"]))
    return ", ".join(parts) + ("; " + "; ".join(rec["notes"]) if rec.get("notes") else "")


def display_path(path):
    """A path relative to the repository when it is inside it, else as it is."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rel = os.path.relpath(path, repo)
    return path if rel.startswith("..") else rel


def header(meta):
    m, e, a = meta["machine"], meta["engine"], meta.get("agent", {})
    lines = ["# dockmon-agent bench: %s" % os.path.basename(meta.get("out", "")) if meta.get("out") else "# dockmon-agent bench", ""]
    lines.append("- **machine**: %s, %d cores (%s), %.1f GiB RAM, kernel %s, %s" % (
        m["hostname"], m["cores"], m["cpu_model"], m["mem_kib"] / 1048576, m["kernel"], m["distro"] or m["arch"]))
    lines.append("- **Docker**: %s (API %s), %s (engine reports cgroup v%s, %s driver), storage %s" % (
        e.get("version"), e.get("api"), m["cgroup_fs"], e.get("cgroup"), e.get("cgroup_driver"), e.get("driver")))
    agents = meta.get("agents") or {"": a}
    for label, a in agents.items():
        name = "agent %s" % label if label else "agent"
        if a.get("version"):
            lines.append("- **%s**: %s, %s, %s bytes (`%s`); tree at %s" % (
                name, a["version"], a["target"], "{:,}".format(a["bytes"]), display_path(a["binary"]), meta.get("git")))
        else:
            lines.append("- **%s**: unavailable: %s (tree at %s)" % (name, a.get("unavailable", "not built"), meta.get("git")))
    lines.append("- **lab**: N = %s containers of `%s`%s; %s other container(s) were already running on the host "
                 "(every contender sees them too)" % (", ".join(map(str, meta["containers"])), meta["image"],
                                                      " running `%s`" % " ".join(meta.get("lab_cmd", [])) if meta.get("lab_cmd") else "",
                                                      meta.get("other_running_containers")))
    lines.append("- **method**: per contender and N: %d s warm-up, then a %d s window sampled every second from /proc "
                 "(whole process tree); engine baseline (`idle`) %s; contenders one at a time in the order of the table; "
                 "CPU resolution one clock tick per window = %.2f %%"
                 % (meta["warmup_s"], meta["window_s"], "%d s" % meta["idle_s"] if meta.get("idle_s") else "skipped",
                    100.0 / meta.get("clk_tck", 100) / max(1, meta["window_s"])))
    lines.append("- **command**: `%s`" % meta["command"])
    lines.append("- **started** %s, took %s s%s" % (meta["started"], meta.get("elapsed_s"),
                                                  "; **interrupted**, results are partial" if meta.get("interrupted") else ""))
    if meta.get("error"):
        lines.append("- **stopped by an error**: %s" % meta["error"])
    return lines


def table(meta, figs):
    lines = ["| contender | N | RSS median | RSS max | PSS median | RSS / container | CPU % | engine CPU % | engine − idle | B / container-sample | threads |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    refs_used = {}
    order = meta.get("contenders") or sorted({r["contender"] for r in meta.get("records", [])})
    for n in meta["containers"]:
        refname = reference_for(meta, figs, n)
        refs_used[n] = refname
        ref = figs.get((refname, n)) if refname else None
        for c in order:
            rec = next((r for r in meta.get("records", []) if r["contender"] == c and r["n"] == n), None)
            if rec is None:
                continue
            if rec["status"] != "ok":
                lines.append("| %s | %d | failed: %s |  |  |  |  |  |  |  |  |" % (c, n, short(rec["reason"])))
                continue
            f = figs[(c, n)]
            ref_row = None if c == "idle" else ref  # the baseline: a ratio to an agent says nothing about it
            per = "–"
            if "rss_per_container" in f:
                per = "%+.1f KiB%s" % (f["rss_per_container"], ratio(f["rss_per_container"], ref_row.get("rss_per_container") if ref_row else None, True))
            lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                c + (" (reference)" if c == refname else "") + (" ⚠" if f["rec"].get("disturbed") else ""), n,
                cell(f, ref_row, "rss_med", mib), cell(f, ref_row, "rss_max", mib), cell(f, ref_row, "pss_med", mib), per,
                cell(f, ref_row, "cpu", num), cell(f, ref_row, "engine", num),
                cell(f, ref_row, "engine_minus_idle", lambda v: "%+.2f" % v),
                cell(f, ref_row, "bytes_per_sample", lambda v: "%.0f" % v),
                "%d" % f["threads_max"] if "threads_max" in f else "–"))
    return lines, refs_used


def short(text, limit=90):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def details(meta, figs):
    lines = ["| contender | N | CPU % 1 s median | CPU % 1 s p90 | dockerd % | containerd+shims % | container-samples / container / s | upstream B/s | sink CPU % | running containers | foreign events | load avg |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for rec in meta.get("records", []):
        if rec["status"] != "ok":
            continue
        f = figs[(rec["contender"], rec["n"])]
        s = rec.get("sink") or {}
        lines.append("| %s | %d | %s | %s | %.2f | %.2f | %s | %s | %s | %s | %s | %s |" % (
            rec["contender"], rec["n"],
            num(f["cpu_med_1s"]) if "cpu_med_1s" in f and "cpu" in f else "–",
            num(f["cpu_p90_1s"]) if "cpu_p90_1s" in f and "cpu" in f else "–",
            rec.get("dockerd_cpu_pct", 0), rec.get("containerd_cpu_pct", 0),
            "%.3f (%d container%s)" % (s["samples_per_container_per_s"], s["containers_reported"], "" if s["containers_reported"] == 1 else "s") if s.get("samples_per_container_per_s") else "–",
            "%.0f" % s["upstream_bytes_per_s"] if s else "–",
            "%.2f" % rec["sink_cpu_pct"] if "sink_cpu_pct" in rec else "–",
            "%s → %s" % (rec.get("running_containers"), rec.get("running_containers_end")),
            rec.get("foreign_events", "–"), rec.get("loadavg", "")))
    return lines


def sink_section(meta):
    lines = []
    for rec in meta.get("records", []):
        s = rec.get("sink")
        if rec["status"] != "ok" or not s:
            continue
        kinds = ", ".join("%s %d frames / %d B" % (k, v["frames"], v["bytes"]) for k, v in sorted(s["kinds"].items()))
        lines.append("- %s, N=%d: %s; wire %d B%s" % (rec["contender"], rec["n"], kinds or "nothing", s["wire_bytes_in"],
                                                      "; " + "; ".join(rec["notes"]) if rec.get("notes") else ""))
    example = next((r["sink"]["examples"].get("event:container_stats") for r in meta.get("records", [])
                    if r.get("sink") and r["sink"].get("examples", {}).get("event:container_stats")), None)
    if example:
        lines += ["", "One container_stats frame as received:", "", "```json", example, "```"]
    return lines


def failures(meta):
    lines, seen = [], set()
    for rec in meta.get("records", []):
        if rec["status"] == "ok":
            continue
        key = (rec["contender"], rec["reason"], rec.get("tail", ""))
        ns = [str(r["n"]) for r in meta["records"] if (r["contender"], r.get("reason"), r.get("tail", "")) == key]
        if key in seen:
            continue
        seen.add(key)
        lines += ["- **%s** (N = %s): %s" % (rec["contender"], ", ".join(ns), rec["reason"])]
        if rec.get("tail"):
            lines += ["", "  ```", *("  " + l for l in rec["tail"].split("\n")), "  ```", ""]
    return lines


def generate(out):
    meta, rows = load(out)
    meta["out"] = out
    figs = figures(meta, rows)
    tbl, refs = table(meta, figs)
    ref_names = sorted({r for r in refs.values() if r})
    lines = header(meta) + ["", "## Results", ""]
    if ref_names:
        lines.append("Each figure is followed by its ratio to the reference contender at the same N (%s)." % ", ".join(
            "N=%d: %s" % (n, r or "none") for n, r in refs.items()))
        wanted = meta.get("reference") or "agent-docker"
        if any(r != wanted for r in refs.values()):
            lines.append("The reference is %s where it did not run; the first of %s that ran stands in." % (
                wanted, ", ".join(fallback_references(wanted))))
    else:
        lines.append("No reference contender ran, so there are no ratios.")
    lines += ["", *tbl, "",
              "- RSS and PSS: the contender's whole process tree (a peer container: its init and children), median and "
              "maximum of the 1 s samples in the window. RSS / container: the slope from the smallest N to this N.",
              "- CPU %: utime+stime of the tree over the whole window, 100 = one core. This is the window mean: agents that "
              "sample every 5 s are bursty, and the median of 1 s samples (10 ms ticks) hides their cost (it is in the "
              "details below).",
              "- engine CPU %: dockerd + containerd + containerd-shim* over the same window; engine − idle subtracts the "
              "`idle` row at the same N, i.e. what the contender makes the engine do (noise of a few 0.1 % is normal).",
              "- B / container-sample: JSON payload bytes per container_stats frame as the sink received them "
              "(agent mode only).", ""]
    disturbed = [r for r in meta.get("records", []) if r.get("disturbed")]
    if disturbed:
        lines[-1:-1] = ["- ⚠ another user of the engine was active during the window (container events of containers "
                        "the bench did not start, or a changed count of running containers; see the details): that "
                        "row's engine figures, and its CPU if it reports containers, include that activity. Rerun on a "
                        "quiet host to compare them."]
    fails = failures(meta)
    if fails:
        lines += ["## Failed", ""] + fails + [""]
    lines += ["## Details", ""] + details(meta, figs) + [""]
    sink = sink_section(meta)
    if sink:
        lines += ["## What the sink received (window only)", ""] + sink + [""]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")

    plotted, failed = [], []
    for c in meta.get("contenders") or []:
        if c == "idle":
            continue
        pts = [(n, figs[(c, n)]["rss_med"] / 1024) for n in meta["containers"] if (c, n) in figs and "rss_med" in figs[(c, n)]]
        if pts:
            plotted.append((c, pts))
        else:
            failed.append(c)
    foot = ("not shown (failed):\n" + "\n".join(failed)) if failed else ""
    svg = svgplot.plot(plotted, "Median RSS of the whole process tree (%s, %s)" % (meta["machine"]["hostname"], meta["started"][:10]),
                       "lab containers (N)", "median RSS (MiB)", foot, xticks=meta["containers"])
    with open(os.path.join(out, "memory.svg"), "w") as f:
        f.write(svg)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RESULTS_DIR   (rewrites summary.md and memory.svg from run.json and samples.csv)")
    generate(sys.argv[1])
