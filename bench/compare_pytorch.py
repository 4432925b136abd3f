#!/usr/bin/python3
"""tapeflow against PyTorch and LibTorch (float64) and our gemm against OpenBLAS's, in one invocation.

Runs the three training benchmarks of bench_train (RealNVP on two moons, planar K = 32 with reverse
KL on U1, RealNVP on Fashion-MNIST-sized data), the same models written in PyTorch (below) and in
LibTorch, PyTorch's C++ API (bench/peers/bench_libtorch.cpp), each model in a process of its own so
that its peak resident memory is its own, and prints one table: CPU ms per step of each, the ratio of
the fastest peer to tapeflow, the targets of the performance issue, and the peak RSS. Then gemm
against OpenBLAS's dgemm (bench/peers/bench_openblas.cpp, the same timer as bench_matmul) at the
square sizes of bench_matmul, with the kernel OpenBLAS runs named.

Optional, never run in CI. On Debian 12:
    apt-get install -y python3-torch libtorch-dev libopenblas0
installs torch 1.13 for /usr/bin/python3 (not for a pyenv or venv `python3` that may come first on
PATH), hence the shebang, and LibTorch; run it as
    /usr/bin/python3 bench/compare_pytorch.py [--build DIR] [--models moons,planar,fmnist]
after building (./tapeflow bench builds; DIR defaults to build/). The peers are built here into
build-peers/ (a meson project of its own); without libtorch-dev the LibTorch column is left out.

OpenBLAS: OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) in the environment force OpenBLAS onto an older
kernel than the one it picks for this CPU; both are removed for every peer this script runs (pass
--keep-openblas-env to keep them), and the kernel each peer's OpenBLAS reports is printed.

Threads: OpenMP and a threaded BLAS together oversubscribe a two-core machine, so BLAS is pinned to
one thread (OPENBLAS_NUM_THREADS=1, set before torch loads) and torch's own pool is run with 1 and 2
threads, as tapeflow is. The ratios compare CPU time per step at 1 thread (which stays meaningful
when other jobs share the machine, as wall time does not) and the wall-clock best of 1/2 threads.
All sides time zero_grad + loss + backward + Adam step, the median over timed steps after warm-up.
"""
import argparse
import ctypes
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

# Forcing variables of OpenBLAS, removed unless --keep-openblas-env (they must go before torch loads).
OPENBLAS_FORCING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
FORCED = {v: os.environ[v] for v in OPENBLAS_FORCING if v in os.environ}
if "--keep-openblas-env" not in sys.argv:
    for var in OPENBLAS_FORCING:
        os.environ.pop(var, None)
# Before torch loads: its BLAS must not start threads of its own beside torch's OpenMP pool.
for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    # name: (warm-up steps, timed steps)
    "moons": (20, 200),
    "planar": (20, 300),
    "fmnist": (3, 15),
}
# Targets from the performance issue: tapeflow's speed-up over the fastest peer in float64 (≥), per model.
SPEEDUP_TARGET = {"moons": 3.0, "planar": 10.0, "fmnist": 1.3}
GEMM_SIZES = (64, 128, 256, 512, 1024)


# ---------------------------------------------------------------------------------------------------
# The models in PyTorch, written to match flows/ op for op where it matters: RealNVP's affine coupling
# (Dinh et al. 2017, eqs. 6-9, masked form), planar layers (Rezende & Mohamed 2015, eq. 10 and appendix A).

def torch_realnvp(torch, dim, couplings, hidden, masks):
    nn = torch.nn

    class Coupling(nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)
            self.register_buffer("complement", 1 - mask)
            self.scale = nn.Parameter(torch.ones(dim, dtype=torch.float64))
            sizes = [dim] + hidden + [2 * dim]
            layers = []
            for k in range(len(sizes) - 1):
                layers.append(nn.Linear(sizes[k], sizes[k + 1], dtype=torch.float64))
                if k + 2 < len(sizes):
                    layers.append(nn.ReLU())
            nn.init.zeros_(layers[-1].weight)  # every coupling starts as the identity
            nn.init.zeros_(layers[-1].bias)
            self.net = nn.Sequential(*layers)

        def inverse(self, x):
            # z = x ⊙ exp(s) + t, log|det| = Σ s  (s, t zero on the copied coordinates)
            s_raw, t = self.net(x * self.mask).chunk(2, dim=1)
            s = torch.tanh(s_raw) * (self.scale * self.complement)
            t = t * self.complement
            return x * torch.exp(s) + t, s.sum(dim=1)

    class RealNVP(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(Coupling(masks[j % 2]) for j in range(couplings))

        def log_prob(self, x):
            log_det = 0
            for layer in reversed(self.layers):
                x, ld = layer.inverse(x)
                log_det = log_det + ld
            return -0.5 * (x * x).sum(dim=1) - 0.5 * dim * torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64)) + log_det

    return RealNVP()


def torch_planar(torch, k_layers):
    nn = torch.nn
    F = torch.nn.functional

    class Planar(nn.Module):
        def __init__(self):
            super().__init__()
            self.u = nn.Parameter(0.1 * torch.randn(2, dtype=torch.float64))
            self.w = nn.Parameter(0.1 * torch.randn(2, dtype=torch.float64))
            self.b = nn.Parameter(torch.zeros(1, dtype=torch.float64))

        def forward(self, z):
            a = (self.w * self.u).sum()
            u_hat = self.u + ((F.softplus(-a) - 1) / (self.w * self.w).sum()) * self.w  # divided by ‖w‖²
            c = F.softplus(a) - 1  # wᵀû
            h = torch.tanh(z @ self.w + self.b)
            return z + h.unsqueeze(1) * u_hat, torch.log1p((1 - h * h) * c)

    class Flow(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(Planar() for _ in range(k_layers))

        def reverse_kl(self, n, beta):
            z = torch.randn(n, 2, dtype=torch.float64)
            log_q = -0.5 * (z * z).sum(dim=1) - torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64))
            for layer in self.layers:
                z, log_det = layer(z)
                log_q = log_q - log_det
            return (log_q + beta * u1(torch, z)).mean()

    return Flow()


def u1(torch, z):
    z1 = z[:, 0]
    ring = 0.5 * ((torch.linalg.norm(z, dim=1) - 2) / 0.4) ** 2
    return ring - torch.logaddexp(-0.5 * ((z1 - 2) / 0.6) ** 2, -0.5 * ((z1 + 2) / 0.6) ** 2)


def moons(torch, n, noise=0.05):
    t = torch.rand(n, dtype=torch.float64) * torch.pi
    outer = torch.rand(n) < 0.5
    x = torch.where(outer, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(outer, torch.sin(t), 0.5 - torch.sin(t))
    return torch.stack([x, y], dim=1) + noise * torch.randn(n, 2, dtype=torch.float64)


def checkerboard(torch, height, width, parity):
    r = torch.arange(height).unsqueeze(1)
    c = torch.arange(width).unsqueeze(0)
    return (((r + c + parity) % 2) == 1).to(torch.float64).reshape(-1)


def alternating(torch, dim, parity):
    return ((torch.arange(dim) + parity) % 2 == 0).to(torch.float64)


def torch_child(model, threads):
    """Trains one model in this process; prints one JSON line."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if model == "moons":
        flow = torch_realnvp(torch, 2, 8, [64, 64], [alternating(torch, 2, 0), alternating(torch, 2, 1)])
        x = moons(torch, 512)
        loss_fn = lambda step: -flow.log_prob(x).mean()
    elif model == "planar":
        flow = torch_planar(torch, 32)
        loss_fn = lambda step: flow.reverse_kl(256, min(1.0, 0.01 + step / 10000))
    elif model == "fmnist":
        flow = torch_realnvp(torch, 784, 6, [512, 512],
                             [checkerboard(torch, 28, 28, 0), checkerboard(torch, 28, 28, 1)])
        x = torch.randn(256, 784, dtype=torch.float64)
        loss_fn = lambda step: -flow.log_prob(x).mean()
    else:
        raise SystemExit(f"unknown model {model}")
    adam = torch.optim.Adam(flow.parameters(), lr=1e-4)
    warmup, repeats = MODELS[model]
    wall, cpu = [], []
    for step in range(warmup + repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        adam.zero_grad()
        loss = loss_fn(step)
        loss.backward()
        adam.step()
        t1, c1 = time.perf_counter(), time.process_time()
        if step >= warmup:
            wall.append((t1 - t0) * 1e3)
            cpu.append((c1 - c0) * 1e3)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"ms": statistics.median(wall), "cpu": statistics.median(cpu), "rss": peak_mib}))


# ---------------------------------------------------------------------------------------------------

def blas_kernel():
    """The kernel of the OpenBLAS this process has loaded (openblas_get_corename), found among the
    mapped libraries: torch's BLAS is the system's libblas.so.3, which may or may not be OpenBLAS."""
    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if ".so" in line and "blas" in line.lower()})
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return "not OpenBLAS (" + (", ".join(os.path.basename(p) for p in paths) or "no BLAS loaded") + ")"


def peer_env(blas_threads=1):
    return dict(os.environ, OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(blas_threads))


def run_json(args, blas_threads=1):
    out = subprocess.run([sys.executable, os.path.abspath(__file__)] + args, check=True, capture_output=True, text=True,
                         env=peer_env(blas_threads))
    return json.loads(out.stdout.strip().splitlines()[-1])


ROW = re.compile(r"^(\S+)\s+(.*?)\s{2,}(-?[0-9.]+)\s+(\S+)\s+(.*)$")


def parse_rows(text):
    rows = []
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            rows.append({"bench": m[1], "case": m[2].strip(), "median": float(m[3]), "unit": m[4], "details": m[5]})
    return rows


def tapeflow_train(build, model, threads):
    out = subprocess.run([os.path.join(build, "bench", "bench_train"), "--no-header", "--threads", str(threads), model],
                         check=True, capture_output=True, text=True).stdout
    row = parse_rows(out)[0]
    cpu = float(re.search(r"cpu ([0-9.]+)", row["details"])[1])
    rss = float(re.search(r"peak RSS ([0-9.]+) MiB", row["details"])[1])
    share = re.search(r"step at ([0-9.]+) % of the gemm rate", row["details"])
    return {"ms": row["median"], "cpu": cpu, "rss": rss, "gemm share": float(share[1]) if share else None}


def build_peers(peers):
    """Builds bench/peers into build-peers/; returns (built, message)."""
    setup = ["meson", "setup", peers, os.path.join(ROOT, "bench", "peers")]
    if os.path.isfile(os.path.join(peers, "build.ninja")):
        setup.append("--reconfigure")  # finds LibTorch if it was installed since
    for command in (setup, ["ninja", "-C", peers]):
        r = subprocess.run(command, capture_output=True, text=True)
        if r.returncode != 0:
            return False, f"`{' '.join(command)}` failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
    return True, ""


def libtorch_train(peers, model, threads):
    warmup, repeats = MODELS[model]
    out = subprocess.run([os.path.join(peers, "bench_libtorch"), model, str(threads), str(warmup), str(repeats)],
                         check=True, capture_output=True, text=True, env=peer_env()).stdout
    return json.loads(out.strip().splitlines()[-1])


def fastest(runs):
    """A side's numbers: CPU ms per step at 1 thread, and its best wall-clock ms over 1 and 2 threads."""
    return {"cpu": runs[0]["cpu"], "ms": min(r["ms"] for r in runs), "rss": runs[0]["rss"],
            "threads": 1 + min(range(len(runs)), key=lambda i: runs[i]["ms"]), "runs": runs}


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--torch-child":
        torch_child(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="tapeflow build directory")
    parser.add_argument("--peers-build", default=os.path.join(ROOT, "build-peers"),
                        help="where bench/peers (LibTorch, OpenBLAS) is built")
    parser.add_argument("--models", default="moons,planar,fmnist")
    parser.add_argument("--no-matmul", action="store_true", help="skip the gemm comparison")
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help=f"keep {' and '.join(OPENBLAS_FORCING)} (forced OpenBLAS kernel) for the peers")
    opts = parser.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("compare_pytorch.py: torch is not importable by this Python "
                 f"({sys.executable}); on Debian: apt-get install -y python3-torch libopenblas0, "
                 "then run with /usr/bin/python3")
    peers_built, why = build_peers(opts.peers_build)
    have_libtorch = peers_built and os.path.isfile(os.path.join(opts.peers_build, "bench_libtorch"))
    forced = ", ".join(f"{k}={v}" for k, v in FORCED.items())
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at start; {os.cpu_count()} CPUs")
    print(f"PyTorch {torch.__version__} (float64; BLAS threads 1; OpenBLAS kernel {blas_kernel()}"
          + (f"; {forced} from the environment {'kept' if opts.keep_openblas_env else 'removed'}" if forced else "")
          + ")")
    if not have_libtorch:
        print("LibTorch: left out: " + (why or "not found by meson (Debian: apt-get install -y libtorch-dev)"))
    print("cpu = CPU ms per step at 1 thread (all sides); ratio = fastest peer's cpu / tapeflow's cpu; "
          "wall = best of 1 and 2 threads\n")
    peers_names = ["PyTorch"] + (["LibTorch"] if have_libtorch else [])
    header = f"{'model':<8} {'tapeflow cpu':>12} " + " ".join(f"{p + ' cpu':>12}" for p in peers_names)
    header += f" {'ratio':>7} {'target':>7}   {'tapeflow wall':>13} " + " ".join(f"{p + ' wall':>13}" for p in peers_names)
    header += f"   {'tapeflow RSS':>12} " + " ".join(f"{p + ' RSS':>12}" for p in peers_names)
    print(header)
    notes = []
    for model in opts.models.split(","):
        sides = {"tapeflow": fastest([tapeflow_train(opts.build, model, t) for t in (1, 2)]),
                 "PyTorch": fastest([run_json(["--torch-child", model, str(t)]) for t in (1, 2)])}
        if have_libtorch:
            sides["LibTorch"] = fastest([libtorch_train(opts.peers_build, model, t) for t in (1, 2)])
            if sides["LibTorch"]["runs"][0]["blas"] not in notes:
                notes.append(sides["LibTorch"]["runs"][0]["blas"])
        ours = sides["tapeflow"]
        best_peer = min(peers_names, key=lambda p: sides[p]["cpu"])
        ratio = sides[best_peer]["cpu"] / ours["cpu"]
        line = f"{model:<8} {ours['cpu']:>12.3f} " + " ".join(f"{sides[p]['cpu']:>12.3f}" for p in peers_names)
        line += f" {ratio:>6.2f}× {'≥' + format(SPEEDUP_TARGET[model], 'g') + '×':>7}   "
        line += " ".join(f"{sides[s]['ms']:>9.3f} ({sides[s]['threads']}t)" for s in ["tapeflow"] + peers_names)
        line += "   " + " ".join(f"{sides[s]['rss']:>8.1f} MiB" for s in ["tapeflow"] + peers_names)
        print(line, flush=True)
        runs = ours["runs"]
        if runs[0]["gemm share"] is not None:
            print(f"{'':<8} tapeflow: step at {runs[0]['gemm share']:.0f} % (1 thread), {runs[1]['gemm share']:.0f} % "
                  f"(2 threads) of the gemm rate; 2 threads run a step {runs[0]['ms'] / runs[1]['ms']:.2f}× as fast "
                  f"(wall) as 1; fastest peer {best_peer}", flush=True)
    if have_libtorch:
        print(f"LibTorch's OpenBLAS kernel: {', '.join(notes)}")
    if opts.no_matmul:
        return
    if not peers_built:
        print(f"\nOpenBLAS: left out: {why}")
        return
    sizes = [str(n) for n in GEMM_SIZES]
    out = subprocess.run([os.path.join(opts.build, "bench", "bench_matmul"), "--no-header"], check=True,
                         capture_output=True, text=True).stdout
    ours = {r["case"]: r for r in parse_rows(out)}
    out = subprocess.run([os.path.join(opts.peers_build, "bench_openblas"), "--no-header"] + sizes, check=True,
                         capture_output=True, text=True, env=peer_env()).stdout
    theirs = {r["case"]: r for r in parse_rows(out)}
    kernel = lambda row: re.search(r"kernel (.*)$", row["details"])[1].strip()
    first = next(iter(theirs.values()))
    our_kernel = kernel(ours[f"{GEMM_SIZES[0]}×{GEMM_SIZES[0]}·{GEMM_SIZES[0]}×{GEMM_SIZES[0]}, 1 thread"])
    print(f"\ngemm: tapeflow's kernel {our_kernel}; OpenBLAS dgemm, kernel {kernel(first)} "
          f"(load average {os.getloadavg()[0]:.1f} now)")
    print(f"{'n×n·n×n':<8} {'threads':>7} {'tapeflow GFLOP/s':>17} {'OpenBLAS GFLOP/s':>17} {'ratio':>7}   "
          f"{'per cpu-second: tapeflow':>24} {'OpenBLAS':>9} {'ratio':>7}")
    cpu_rate = lambda row: float(re.search(r"per cpu-second ([0-9.]+)", row["details"])[1]) \
        if "per cpu-second" in row["details"] else None
    for n in GEMM_SIZES:
        for t in (1, 2):
            label = f"{n}×{n}·{n}×{n}, {t} thread{'s' if t > 1 else ''}"
            a, b = ours[label], theirs[label]
            line = f"{n:<8} {t:>7} {a['median']:>17.1f} {b['median']:>17.1f} {a['median'] / b['median']:>7.2f}"
            if cpu_rate(a) and cpu_rate(b):
                line += f"   {cpu_rate(a):>24.1f} {cpu_rate(b):>9.1f} {cpu_rate(a) / cpu_rate(b):>7.2f}"
            print(line, flush=True)
    print("\ntarget: tapeflow ≥ 0.5 × OpenBLAS at 512, 1 thread")


if __name__ == "__main__":
    main()
