"""One-step Hopfield retrieval against the naive torch formula and faiss flat search.

B queries, d dims, M stored patterns (float32, one thread). Each case runs in
a fresh process so its peak memory (max RSS growth) can be read.
Run: ``python benchmarks/bench_core.py [--quick]``; writes ``results/bench_core.md``.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

CASE = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(1)
method = sys.argv[1]
M, B, d = (int(a) for a in sys.argv[2:5])
beta, repeat = float(sys.argv[5]), int(sys.argv[6])
g = torch.Generator().manual_seed(0)
X = torch.randn(M, d, generator=g); X /= X.norm(dim=1, keepdim=True)
Q = X[torch.randint(M, (B,), generator=g)] + 0.1 * torch.randn(B, d, generator=g)
if method == "faiss":
    import faiss
    faiss.omp_set_num_threads(1)
    index = faiss.IndexFlatIP(d); index.add(X.numpy())
    q = Q.numpy()
    fn = lambda: index.search(q, 1)
elif method == "naive":
    fn = lambda: torch.softmax(beta * Q @ X.T, dim=1) @ X
else:
    from skhop.nn.functional import hopfield_retrieve
    fn = lambda: hopfield_retrieve(Q, X, beta=beta)
fn()  # warm-up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(repeat):
    t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
# the warm-up already reached the peak once: report the larger of warm-up and timed runs
print(json.dumps({"time": min(times), "peak": max(peak, 0)}))
"""

PEAK_CASE = CASE.replace("fn()  # warm-up\n", "")


def run(method, M, B, d, beta, repeat):
    out = {}
    for key, code in (("time", CASE), ("peak", PEAK_CASE)):
        res = subprocess.run(
            [sys.executable, "-c", code, method, str(M), str(B), str(d), str(beta), str(repeat)],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
        out[key] = json.loads(res.stdout)[key]
        repeat = 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="M up to 1e5 only")
    args = ap.parse_args()
    B, d, beta = 1000, 64, 8.0
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    naive_limit = 2e9  # bytes for the two B x M float32 matrices of the naive formula
    lines = [
        f"One-step retrieval, B={B} queries, d={d}, float32, 1 thread "
        f"(time = best of runs; peak = max RSS growth)",
        "",
        "| M | skhop | naive torch | faiss IndexFlatIP k=1 | skhop / naive | skhop / faiss "
        "| skhop peak MB | naive peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for M in sizes:
        repeat = 5 if M <= 100_000 else 2
        ours = run("skhop", M, B, d, beta, repeat)
        fai = run("faiss", M, B, d, beta, repeat)
        if 2 * B * M * 4 <= naive_limit:
            nai = run("naive", M, B, d, beta, repeat)
            n_time, n_ratio = f"{nai['time']:.3f} s", f"{ours['time'] / nai['time']:.2f}"
            n_peak = f"{nai['peak'] / 1e6:.0f}"
        else:
            n_time, n_ratio, n_peak = "skipped (>2 GB)", "-", "-"
        line = (
            f"| {M:.0e} | {ours['time']:.3f} s | {n_time} | {fai['time']:.3f} s | {n_ratio} "
            f"| {ours['time'] / fai['time']:.2f} | {ours['peak'] / 1e6:.0f} | {n_peak} |"
        )
        lines.append(line)
        print(line, flush=True)
    out = Path(__file__).parent / "results" / "bench_core.md"
    out.write_text("\n".join(lines) + "\n\nReproduce: `python benchmarks/bench_core.py`\n")


if __name__ == "__main__":
    main()
