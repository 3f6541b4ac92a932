"""Retrieval speed of KernelHopfieldRetriever: exact streamed and faiss-candidate updates.

B=1000 queries, d=64, float32, one thread. Stored patterns: M random unit
vectors; queries: stored patterns plus Gaussian noise of ``sigma`` per entry
(sigma=0.05: cosine about 0.93 to the source; sigma=0.1, the core
benchmark's queries: about 0.78, where no inverted-file probe budget finds
the best memory reliably). Each case runs in a fresh process (the approach
and the faiss flat case of ``bench_core.py``); ``peak`` is the growth of the
process's max RSS after the data exist, fit included. ``agreement`` is the
share of queries whose most-attended memory (``kneighbors``) is the same for
``index="approximate"`` as for ``index="exact"``.

Two more sections, each case again in a fresh process:

- *Every call*: ``kneighbors`` (k=1), ``score`` and ``transform`` of the exact
  retriever against ``sklearn.neighbors.NearestNeighbors(algorithm="brute")``
  (Euclidean, one BLAS thread) on the same data, at M=5e4 and 1e6; and what
  a fitted retriever holds (resident memory growth after fit, and its pickle)
  against the size of one copy of the memory bank.
- *Approximate indexes* at M=1e6: recall@1 against exact search (faiss
  ``IndexFlatL2``; on unit memories the Euclidean, cosine and Hopfield
  rankings coincide) against queries per second, one thread, the same 1000
  queries, for faiss ``IndexHNSWFlat`` (32 links, efConstruction 40, a
  sweep of efSearch), faiss ``IndexIVFFlat`` (2 sqrt(M) lists, a sweep of
  nprobe) and the retriever's own index (``kneighbors`` with
  ``index="approximate"``, a sweep of ``n_probe``, a predict-time knob).
  Writes ``results/retrieval_ann.png`` too.

Run: ``python benchmarks/retrieval_speed.py [--quick] [--only {main,calls,ann}]``;
writes ``results/retrieval_speed.md``, ``retrieval_speed_calls.md`` and
``retrieval_speed_ann.md`` (the sections asked for).
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_core  # noqa: E402

CASE = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(1)
index, M, B, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sigma, repeat, out, n_probe = float(sys.argv[5]), int(sys.argv[6]), sys.argv[7], int(sys.argv[8])
similarity = sys.argv[9]
g = torch.Generator().manual_seed(0)
X = torch.randn(M, d, generator=g); X /= X.norm(dim=1, keepdim=True)
Q = (X[torch.randint(M, (B,), generator=g)] + sigma * torch.randn(B, d, generator=g)).numpy()
X = X.numpy()
from skhop import KernelHopfieldRetriever
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
est = KernelHopfieldRetriever(index=index, n_probe=n_probe, similarity=similarity,
                              random_state=0).fit(X)
fit = time.perf_counter() - t0
times = []
for _ in range(repeat):
    t0 = time.perf_counter(); est.transform(Q); times.append(time.perf_counter() - t0)
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
np.save(out, est.kneighbors(Q, return_distance=False)[:, 0])
print(json.dumps({"fit": fit, "time": min(times), "peak": max(peak, 0), "beta": est.beta_}))
"""

CALLS = r"""
import ctypes, gc, json, pickle, resource, sys, time
import numpy as np, torch
from threadpoolctl import threadpool_limits
torch.set_num_threads(1)
M, B, d, repeat = (int(a) for a in sys.argv[1:5])
g = torch.Generator().manual_seed(0)
X = torch.randn(M, d, generator=g); X /= X.norm(dim=1, keepdim=True)
y = torch.randint(M, (B,), generator=g)
Q = (X[y] + 0.05 * torch.randn(B, d, generator=g)).numpy()
X, y = X.numpy(), y.numpy()
from sklearn.neighbors import NearestNeighbors
from skhop import KernelHopfieldRetriever

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

def arrays(obj, seen, depth=0):
    # bytes of the distinct numpy and torch buffers the fitted object references
    if depth > 4:
        return
    if isinstance(obj, np.ndarray):
        base = obj if obj.base is None else obj.base
        seen[id(base)] = getattr(base, "nbytes", obj.nbytes)
    elif isinstance(obj, torch.Tensor):
        seen[obj.untyped_storage().data_ptr()] = obj.untyped_storage().nbytes()
    elif isinstance(obj, (dict, list, tuple)):
        for v in obj.values() if isinstance(obj, dict) else obj:
            arrays(v, seen, depth + 1)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        arrays(vars(obj), seen, depth + 1)
    return seen

libc = ctypes.CDLL("libc.so.6")
with threadpool_limits(1):
    # torch's and sklearn's first-use allocations are not the retriever's
    KernelHopfieldRetriever(index="exact", random_state=0).fit(X[:1000])
    gc.collect(); libc.malloc_trim(0); before = rss()
    est = KernelHopfieldRetriever(index="exact", random_state=0).fit(X)
    gc.collect(); libc.malloc_trim(0); held = rss() - before
    owned = sum(arrays(est, {}).values())
    size = len(pickle.dumps(est))
    nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(X)
    calls = {
        "nn": lambda: nn.kneighbors(Q, 1, return_distance=False)[:, 0],
        "kneighbors": lambda: est.kneighbors(Q, 1, return_distance=False)[:, 0],
        "score": lambda: est.score(Q, y),
        "transform": lambda: est.transform(Q),
    }
    times, outs = {k: [] for k in calls}, {}
    for _ in range(repeat):  # interleaved, so that a change of load hits every method alike
        for name, fn in calls.items():
            t0 = time.perf_counter(); outs[name] = fn()
            times[name].append(time.perf_counter() - t0)
print(json.dumps({
    **{k: min(v) for k, v in times.items()},
    "same": float((outs["kneighbors"] == outs["nn"]).mean()),
    "held": held, "arrays": owned, "pickle": size, "bank": X.nbytes,
}))
"""

ANN = r"""
import json, sys, time
import numpy as np, torch, faiss
torch.set_num_threads(1); faiss.omp_set_num_threads(1)
M, B, d, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
g = torch.Generator().manual_seed(0)
X = torch.randn(M, d, generator=g); X /= X.norm(dim=1, keepdim=True)
Q = (X[torch.randint(M, (B,), generator=g)] + 0.05 * torch.randn(B, d, generator=g)).numpy()
X = X.numpy()
flat = faiss.IndexFlatL2(d); flat.add(X)
truth = flat.search(Q, 1)[1][:, 0]
del flat
rows = []

def sweep(method, build, settings, set_knob, search):
    t0 = time.perf_counter(); index = build(); built = time.perf_counter() - t0
    for value in settings:
        set_knob(index, value)
        search(index)  # warm-up
        times = []
        for _ in range(3):
            t0 = time.perf_counter(); ind = search(index); times.append(time.perf_counter() - t0)
        rows.append({"method": method, "setting": value, "build": built,
                     "recall": float((ind == truth).mean()), "qps": B / min(times)})
        print(json.dumps(rows[-1]), flush=True)
    return index

def hnsw():
    index = faiss.IndexHNSWFlat(d, 32); index.hnsw.efConstruction = 40; index.add(X)
    return index
sweep("faiss IndexHNSWFlat", hnsw, (16, 32, 64, 128, 256),
      lambda i, v: setattr(i.hnsw, "efSearch", v), lambda i: i.search(Q, 1)[1][:, 0])
n_lists = int(2 * M ** 0.5)
def ivf():
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, n_lists)
    rng = np.random.RandomState(0)
    index.cp.seed = 0
    index.train(X[np.sort(rng.choice(M, min(M, 40 * n_lists), replace=False))]); index.add(X)
    return index
sweep("faiss IndexIVFFlat", ivf, (4, 8, 16, 32, 64, 128),
      lambda i, v: setattr(i, "nprobe", v), lambda i: i.search(Q, 1)[1][:, 0])
from skhop import KernelHopfieldRetriever
sweep("skhop index='approximate'",
      lambda: KernelHopfieldRetriever(index="approximate", random_state=0).fit(X),
      (8, 16, 32, 64, 128, 256), lambda e, v: e.set_params(n_probe=v),
      lambda e: e.kneighbors(Q, 1, return_distance=False)[:, 0])
with open(out, "w") as f:
    json.dump(rows, f)
"""


def _python(code, *args):
    res = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    return res.stdout


def calls_section(sizes, B=1000, d=64):
    lines = [
        "",
        "## Every call: the exact retriever against NearestNeighbors",
        "",
        f"B={B} queries (unit memories plus noise 0.05), d={d}, one thread, index='exact', "
        "defaults otherwise; NearestNeighbors(algorithm='brute'), Euclidean, one BLAS thread; "
        "time = best of 3 (M=5e4) or 2 (M=1e6) runs, the methods taking turns. "
        "'held' is the resident memory a fitted retriever keeps (growth over fit after a "
        "warm-up fit, collection and malloc_trim); 'arrays' the distinct numpy and torch "
        "buffers it references; 'bank' one copy of the stored patterns.",
        "",
        "| M | NearestNeighbors | kneighbors | score | transform | kneighbors / NN "
        "| kneighbors / transform | score / transform | same top-1 as NN | held MB "
        "| arrays MB | pickle MB | bank MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for M in sizes:
        r = json.loads(_python(CALLS, M, B, d, 3 if M <= 100_000 else 2).strip().splitlines()[-1])
        line = (
            f"| {M:.0e} | {r['nn']:.3f} s | {r['kneighbors']:.3f} s | {r['score']:.3f} s "
            f"| {r['transform']:.3f} s | {r['kneighbors'] / r['nn']:.2f} "
            f"| {r['kneighbors'] / r['transform']:.2f} | {r['score'] / r['transform']:.2f} "
            f"| {r['same']:.3f} | {r['held'] / 1e6:.0f} | {r['arrays'] / 1e6:.0f} "
            f"| {r['pickle'] / 1e6:.0f} "
            f"| {r['bank'] / 1e6:.0f} |"
        )
        lines.append(line)
        print(line, flush=True)
    return lines


def ann_section(M, B=1000, d=64):
    results = Path(__file__).parent / "results"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ann.json"
        _python(ANN, M, B, d, path)
        rows = json.loads(path.read_text())
    lines = [
        "",
        f"## Approximate indexes at M={M:.0e}, d={d}",
        "",
        f"Recall@1 against exact search, the same {B} queries (unit memories plus noise "
        "0.05), one thread; q/s = queries per second, best of three runs after a warm-up; "
        "build = index construction (for skhop, the whole fit).",
        "",
        "| method | setting | recall@1 | q/s | build |",
        "|---|---|---|---|---|",
    ]
    names = {"faiss IndexHNSWFlat": "efSearch", "faiss IndexIVFFlat": "nprobe"}
    for r in rows:
        knob = names.get(r["method"], "n_probe")
        lines.append(
            f"| {r['method']} | {knob}={r['setting']} | {r['recall']:.3f} | {r['qps']:.0f} "
            f"| {r['build']:.0f} s |"
        )
    lines += ["", "Fastest setting with recall@1 >= 0.99, per method:", ""]
    best = {}
    for r in rows:
        if r["recall"] >= 0.99 and r["qps"] > best.get(r["method"], {"qps": 0})["qps"]:
            best[r["method"]] = r
    hnsw = best.get("faiss IndexHNSWFlat")
    for method, r in best.items():
        ratio = f", {r['qps'] / hnsw['qps']:.2f}x HNSW's" if hnsw else ""
        lines.append(f"- {method}: {r['qps']:.0f} q/s at recall@1 {r['recall']:.3f}{ratio}")
    for method in {r["method"] for r in rows} - set(best):
        lines.append(f"- {method}: no setting reached recall@1 0.99")
    print("\n".join(lines), flush=True)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return lines
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = [(r["recall"], r["qps"]) for r in rows if r["method"] == method]
        ax.plot(*zip(*pts, strict=True), marker="o", label=method)
    ax.axvline(0.99, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("recall@1 against exact search")
    ax.set_ylabel("queries per second (one thread)")
    ax.set_yscale("log")
    ax.set_title(f"M={M:.0e}, d={d}, {B} queries")
    ax.legend()
    fig.tight_layout()
    fig.savefig(results / "retrieval_ann.png", dpi=120)
    lines += ["", "![recall against speed](retrieval_ann.png)"]
    return lines


def run_case(index, M, sigma, repeat, tmp, n_probe=64, B=1000, d=64, similarity="auto"):
    out = str(Path(tmp) / f"{index}_{M}_{sigma}_{n_probe}_{similarity}.npy")
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            CASE,
            index,
            str(M),
            str(B),
            str(d),
            str(sigma),
            str(repeat),
            out,
            str(n_probe),
            similarity,
        ],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    info = json.loads(res.stdout.strip().splitlines()[-1])
    info["neighbors"] = out
    return info


def main_section(quick, B=1000, d=64):
    import numpy as np

    lines = [
        f"KernelHopfieldRetriever, B={B} queries, d={d}, float32, 1 thread, one step, "
        "defaults (similarity='auto': a likelihood-ratio test per query, then neg_l2 or "
        "cosine; auto beta) unless the method says otherwise (time = best of runs; "
        "peak = max RSS growth, fit included)",
        "",
        "| M | sigma | method | fit | retrieve | vs faiss flat | vs exact | agreement | peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    sizes = [100_000] if quick else [100_000, 1_000_000]
    with tempfile.TemporaryDirectory() as tmp:
        for M in sizes:
            flat = None
            if M <= 100_000:
                flat = bench_core.run("faiss", M, B, d, 1.0, 5)
                line = (
                    f"| {M:.0e} | - | faiss IndexFlatIP k=1 | - | {flat['time']:.3f} s "
                    f"| 1.00 | - | - | {flat['peak'] / 1e6:.0f} |"
                )
                lines.append(line)
                print(line, flush=True)
            repeat = 5 if M <= 100_000 else 2
            exact = run_case("exact", M, 0.05, repeat, tmp)
            ref = np.load(exact["neighbors"])
            sigmas = (0.05, 0.1) if M >= 1_000_000 else (0.05,)
            refs = {0.05: ref}
            for sigma in sigmas[1:]:
                # the exact time does not depend on sigma: the best of both runs is kept
                again = run_case("exact", M, sigma, repeat, tmp)
                refs[sigma] = np.load(again["neighbors"])
                exact["time"] = min(exact["time"], again["time"])
            vs_flat = f"{exact['time'] / flat['time']:.2f}" if flat else "-"
            line = (
                f"| {M:.0e} | {', '.join(map(str, sigmas))} | exact | {exact['fit']:.1f} s "
                f"| {exact['time']:.3f} s | {vs_flat} | 1.00 | 1.000 "
                f"| {exact['peak'] / 1e6:.0f} |"
            )
            lines.append(line)
            print(line, flush=True)
            if flat:
                # the fixed cosine path: no test pass, unit keys (one product per step)
                cos = run_case("exact", M, 0.05, repeat, tmp, similarity="cosine")
                line = (
                    f"| {M:.0e} | 0.05 | exact, similarity='cosine' | {cos['fit']:.1f} s "
                    f"| {cos['time']:.3f} s | {cos['time'] / flat['time']:.2f} "
                    f"| {cos['time'] / exact['time']:.2f} | - | {cos['peak'] / 1e6:.0f} |"
                )
                lines.append(line)
                print(line, flush=True)
            settings = [(sigma, 64) for sigma in sigmas]
            if M >= 1_000_000:
                settings.append((0.1, 256))  # the noisier queries need more lists probed
            for sigma, n_probe in settings:
                appr = run_case("approximate", M, sigma, 5, tmp, n_probe=n_probe)
                agree = float((np.load(appr["neighbors"]) == refs[sigma]).mean())
                vs_flat = f"{appr['time'] / flat['time']:.2f}" if flat else "-"
                ratio = appr["time"] / exact["time"]
                line = (
                    f"| {M:.0e} | {sigma} | approximate, n_probe={n_probe} "
                    f"| {appr['fit']:.1f} s "
                    f"| {appr['time']:.3f} s | {vs_flat} | {ratio:.3f} ({1 / ratio:.0f}x "
                    f"faster) | {agree:.3f} | {appr['peak'] / 1e6:.0f} |"
                )
                lines.append(line)
                print(line, flush=True)
    lines += [
        "",
        "Approximate: faiss IVF (2 sqrt(M) lists, 4-bit PQ fast scan), n_probe lists "
        "visited (default 64), 32 candidates, then the exact update on their features.",
    ]
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="M up to 1e5 only")
    ap.add_argument("--only", choices=("main", "calls", "ann"), help="one section only")
    args = ap.parse_args()
    sections = {
        "main": ("retrieval_speed.md", lambda: main_section(args.quick)),
        "calls": (
            "retrieval_speed_calls.md",
            lambda: calls_section([50_000] if args.quick else [50_000, 1_000_000]),
        ),
        "ann": (
            "retrieval_speed_ann.md",
            lambda: ann_section(100_000 if args.quick else 1_000_000),
        ),
    }
    for key, (name, run) in sections.items():
        if args.only not in (None, key):
            continue
        lines = run()
        flags = " ".join(f for f in ("--quick" if args.quick else "", f"--only {key}") if f)
        lines += ["", f"Reproduce: `python benchmarks/retrieval_speed.py {flags}`"]
        out = Path(__file__).parent / "results" / name
        out.write_text("\n".join(lines).lstrip("\n") + "\n")


if __name__ == "__main__":
    main()
