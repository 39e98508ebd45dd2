#!/usr/bin/env python3
"""Renders the benchmark results that benchmarks/run_all.sh wrote (benchmarks/results/<host>/*.json) into
docs/performance.md, between the markers

    <!-- benchmark-results:begin -->  ...  <!-- benchmark-results:end -->

(one table per benchmark binary: time per iteration and every counter, plus the machine and date from the
JSON context) and draws two SVG plots into docs/images/: the event-driven accumulate against the dense GEMM
across firing rates (bench_kernels), and SpikingBERT's inference time against T, event-driven and dense
(bench_spiking_bert). The hand-written sections of the page, outside the markers, are left alone.

Python 3 standard library only. Usage:
    python3 benchmarks/render.py [benchmarks/results/<host>] [--page docs/performance.md]
"""
import argparse
import glob
import json
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BEGIN, END = "<!-- benchmark-results:begin -->", "<!-- benchmark-results:end -->"
ORDER = ["kernels", "neurons", "autograd", "equilibrium", "egru", "spike_gpt", "spiking_bert"]
STANDARD = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
            "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index",
            "aggregate_name", "aggregate_unit", "label", "error_occurred", "error_message"}


def fmt_num(v):
    if isinstance(v, str):
        return v
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e6 or a < 1e-3:
        return "%.3g" % v
    if a >= 100:
        return "%.0f" % v
    return "%.3g" % v


def load(results):
    out = {}
    for path in glob.glob(os.path.join(results, "*.json")):
        with open(path) as f:
            out[os.path.splitext(os.path.basename(path))[0]] = json.load(f)
    if not out:
        sys.exit("render.py: no *.json under %s (run benchmarks/run_all.sh first)" % results)
    return out


def table(data):
    rows = [b for b in data["benchmarks"] if b.get("run_type") != "aggregate" and not b.get("error_occurred")]
    counters = []
    for b in rows:
        for k in b:
            if k not in STANDARD and k not in counters:
                counters.append(k)
    lines = ["| benchmark | time | CPU | " + " | ".join(counters) + " |",
             "|---|---|---|" + "---|" * len(counters)]
    for b in rows:
        unit = b.get("time_unit", "ns")
        cells = [b["name"].replace("|", "\\|"), "%s %s" % (fmt_num(b["real_time"]), unit),
                 "%s %s" % (fmt_num(b["cpu_time"]), unit)]
        cells += [fmt_num(b[k]) if k in b else "" for k in counters]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def svg_plot(path, title, xlabel, ylabel, series, logx=False):
    """series: [(label, colour, [(x, y), ...])]. A plain line chart, no dependencies."""
    import math
    W, H, L, R, T, B = 560, 340, 70, 150, 40, 50
    xs = [x for _, _, pts in series for x, _ in pts]
    ys = [y for _, _, pts in series for _, y in pts]
    if not xs:
        return False
    fx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    x0, x1 = fx(min(xs)), fx(max(xs))
    y0, y1 = 0.0, max(ys) * 1.1
    x1 = x1 if x1 > x0 else x0 + 1

    def px(x):
        return L + (fx(x) - x0) / (x1 - x0) * (W - L - R)

    def py(y):
        return H - B - (y - y0) / (y1 - y0) * (H - T - B)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="12">' % (W, H), '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14">%s</text>' % (L, title),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, H - B, W - R, H - B),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, T, L, H - B),
           '<text x="%d" y="%d" text-anchor="middle">%s</text>' % ((L + W - R) // 2, H - 12, xlabel),
           '<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">%s</text>'
           % ((T + H - B) // 2, (T + H - B) // 2, ylabel)]
    for x in sorted(set(xs)):
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (px(x), H - B + 16, fmt_num(x)))
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (L - 6, py(y) + 4, fmt_num(y)))
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (L, py(y), W - R, py(y)))
    for i, (label, colour, pts) in enumerate(series):
        pts = sorted(pts)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                   % (colour, " ".join("%.1f,%.1f" % (px(x), py(y)) for x, y in pts)))
        for x, y in pts:
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px(x), py(y), colour))
        out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (W - R + 10, T + 16 + 18 * i, colour, label))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def args_of(name):
    return dict(re.findall(r"([A-Za-z_]+):([0-9.]+)", name))


def plots(runs, images):
    made = []
    if "kernels" in runs:
        ev, dense = {}, {}
        for b in runs["kernels"]["benchmarks"]:
            a = args_of(b["name"])
            if a.get("n") == "2048" and a.get("batch") == "32" and a.get("threads") == "1":
                if b["name"].startswith("BM_AccumulateEvents/"):
                    ev[float(a["rate"])] = b["real_time"]
                elif b["name"].startswith("BM_DenseEigen/"):
                    dense = b["real_time"]
        if ev and dense:
            pts = [(r, t / dense) for r, t in ev.items()]
            if svg_plot(os.path.join(images, "perf_accumulate.svg"),
                        "spike_matmul / dense GEMM time, n = 2048, batch 32, 1 thread", "firing rate (%)",
                        "time ratio", [("event-driven / dense", "#c0392b", pts),
                                       ("dense", "#7f8c8d", [(min(ev), 1.0), (max(ev), 1.0)])], logx=True):
                made.append(("perf_accumulate.svg", "event-driven accumulate against the dense GEMM"))
    if "spiking_bert" in runs:
        series = {0: [], 1: []}
        for b in runs["spiking_bert"]["benchmarks"]:
            if b["name"].startswith("BM_SpikingBertInfer/"):
                a = args_of(b["name"])
                series[int(a["dense"])].append((float(a["T"]), b["real_time"]))
        if series[0]:
            if svg_plot(os.path.join(images, "perf_spiking_bert.svg"),
                        "SpikingBERT inference, batch 8 x 40 tokens, 1 thread", "T (time steps)",
                        "ms per batch", [("event-driven", "#c0392b", series[0]), ("dense", "#2c3e50", series[1])]):
                made.append(("perf_spiking_bert.svg", "SpikingBERT inference time against T"))
    return made


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="?", help="benchmarks/results/<host> (default: the newest)")
    ap.add_argument("--page", default=os.path.join(ROOT, "docs", "performance.md"))
    args = ap.parse_args()
    results = args.results
    if not results:
        dirs = sorted(glob.glob(os.path.join(ROOT, "benchmarks", "results", "*")), key=os.path.getmtime)
        if not dirs:
            sys.exit("render.py: no benchmarks/results/<host>/ (run benchmarks/run_all.sh first)")
        results = dirs[-1]
    runs = load(results)
    images = os.path.join(os.path.dirname(args.page), "images")
    os.makedirs(images, exist_ok=True)
    made = plots(runs, images)
    ctx = next(iter(runs.values()))["context"]
    rel = os.path.relpath(results, ROOT)
    parts = [BEGIN, "",
             "Rendered by `benchmarks/render.py` from `%s/*.json`: host %s (spikelm Release; Google Benchmark "
             "library build: %s, Debian's package). Each table says when it was run: a file rerun alone may "
             "come from another day's machine." % (rel, ctx.get("host_name", "?"), ctx.get("library_build_type", "?")),
             ""]
    for file, alt in made:
        parts += ["![%s](images/%s)" % (alt, file), ""]
    for name in sorted(runs, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
        c = runs[name]["context"]
        parts += ["### bench_%s" % name, "",
                  "Run %s, %d CPUs at %s MHz." % (c.get("date", "?"), c.get("num_cpus", 0), c.get("mhz_per_cpu", "?")),
                  "", table(runs[name]), ""]
    parts.append(END)
    block = "\n".join(parts)
    with open(args.page) as f:
        page = f.read()
    if BEGIN in page and END in page:
        page = page[:page.index(BEGIN)] + block + page[page.index(END) + len(END):]
    else:
        page = page.rstrip("\n") + "\n\n## All results (generated)\n\n" + block + "\n"
    with open(args.page, "w") as f:
        f.write(page)
    print("render.py: wrote %s (%d benchmark files, %d plots)" % (args.page, len(runs), len(made)))


if __name__ == "__main__":
    main()
