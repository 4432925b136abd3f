#!/usr/bin/python3
"""tapeflow against PyTorch (float64) on the same machine, in one invocation.

Runs the three training benchmarks of bench_train (RealNVP on two moons, planar K = 32 with reverse
KL on U1, RealNVP on Fashion-MNIST-sized data) and the same models written in PyTorch, each model in
a process of its own so that its peak resident memory is its own, and prints per model the step
times, their ratio and the peak RSS; then gemm against OpenBLAS's dgemm (through torch.mm) at the
square sizes of bench_matmul.

Optional, never run in CI. It needs PyTorch for the *system* Python: on Debian 12,
    apt-get install -y python3-torch libopenblas0
installs torch 1.13 for /usr/bin/python3 (not for a pyenv or venv `python3` that may come first on
PATH), hence the shebang; run it as
    /usr/bin/python3 bench/compare_pytorch.py [--build DIR] [--models moons,planar,fmnist]
after building (./tapeflow bench builds; DIR defaults to build/).

Threads: OpenMP and a threaded BLAS together oversubscribe a two-core machine, so BLAS is pinned to
one thread (OPENBLAS_NUM_THREADS=1, set before torch loads) and torch's own pool is tried with 1 and
2 threads; the faster is PyTorch's number. tapeflow likewise runs with 1 and 2 threads and its
faster setting counts. Both sides time zero_grad + loss + backward + Adam step, the median over
timed steps after warm-up, and also report CPU time per step, which stays meaningful when other
jobs share the machine (wall time then grows for both).
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

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
# Targets from the performance issue: tapeflow's speed-up over PyTorch float64 (≥), per model.
SPEEDUP_TARGET = {"moons": 3.0, "planar": 10.0, "fmnist": 1.0}


# ---------------------------------------------------------------------------------------------------
# The models in PyTorch, written to match flows/ op for op where it matters (docs/theory.md §3, §5, §7).

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


def torch_mm_gflops(n, threads):
    import torch

    torch.set_num_threads(threads)
    a = torch.rand(n, n, dtype=torch.float64)
    b = torch.rand(n, n, dtype=torch.float64)
    torch.mm(a, b)
    calls = 1
    while True:  # calibrate to ≥ 50 ms per timing, then take the median of 5 (as bench_table.hpp)
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b)
        if time.perf_counter() - t0 >= 0.0125:
            break
        calls *= 2
    calls *= 4
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b)
        rates.append(2 * n**3 * calls / (time.perf_counter() - t0) * 1e-9)
    return statistics.median(rates)


# ---------------------------------------------------------------------------------------------------

def run_json(args, blas_threads=1):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(blas_threads))
    out = subprocess.run([sys.executable, os.path.abspath(__file__)] + args, check=True, capture_output=True, text=True,
                         env=env)
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
    return {"ms": row["median"], "cpu": cpu, "rss": rss}


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--torch-child":
        torch_child(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) >= 2 and sys.argv[1] == "--torch-mm":
        print(json.dumps({"gflops": torch_mm_gflops(int(sys.argv[2]), int(sys.argv[3]))}))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="tapeflow build directory")
    parser.add_argument("--models", default="moons,planar,fmnist")
    parser.add_argument("--no-matmul", action="store_true", help="skip the gemm comparison")
    opts = parser.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("compare_pytorch.py: torch is not importable by this Python "
                 f"({sys.executable}); on Debian: apt-get install -y python3-torch libopenblas0, "
                 "then run with /usr/bin/python3")
    print(f"PyTorch {torch.__version__} (float64, BLAS threads 1, best of torch threads 1/2) vs tapeflow "
          f"(best of 1/2 threads); {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start")
    print("speed-up = PyTorch time / tapeflow time (wall; cpu = per CPU-second, robust to other jobs)\n")
    print(f"{'model':<8} {'tapeflow ms':>12} {'PyTorch ms':>11} {'speed-up':>9} {'cpu speed-up':>13} {'target':>7}  "
          f"{'tapeflow RSS':>13} {'PyTorch RSS':>12} {'RSS ratio':>9}")
    for model in opts.models.split(","):
        our_runs = [tapeflow_train(opts.build, model, t) for t in (1, 2)]
        their_runs = [run_json(["--torch-child", model, str(t)]) for t in (1, 2)]
        ours = min(our_runs, key=lambda r: r["ms"])
        theirs = min(their_runs, key=lambda r: r["ms"])
        # CPU time is compared at each side's leanest setting (one thread, as a rule).
        cpu_ratio = min(r["cpu"] for r in their_runs) / min(r["cpu"] for r in our_runs)
        print(f"{model:<8} {ours['ms']:>12.3f} {theirs['ms']:>11.3f} {theirs['ms'] / ours['ms']:>8.2f}× "
              f"{cpu_ratio:>12.2f}× {'≥' + format(SPEEDUP_TARGET[model], 'g') + '×':>7}  "
              f"{ours['rss']:>9.1f} MiB {theirs['rss']:>8.1f} MiB {ours['rss'] / theirs['rss']:>9.3f}",
              flush=True)
    if opts.no_matmul:
        return
    out = subprocess.run([os.path.join(opts.build, "bench", "bench_matmul"), "--no-header"], check=True,
                         capture_output=True, text=True).stdout
    ours = {r["case"]: r["median"] for r in parse_rows(out)}
    print(f"\n{'gemm n×n·n×n':<14} {'threads':>7} {'tapeflow GFLOP/s':>17} {'OpenBLAS GFLOP/s':>17} {'ratio':>7}")
    for n in (64, 128, 256, 512, 1024):
        for t in (1, 2):
            label = f"{n}×{n}·{n}×{n}, {t} thread{'s' if t > 1 else ''}"
            theirs = run_json(["--torch-mm", str(n), str(t)], blas_threads=t)["gflops"]
            print(f"{n:<14} {t:>7} {ours[label]:>17.1f} {theirs:>17.1f} {ours[label] / theirs:>7.2f}", flush=True)
    print("\ntarget: tapeflow ≥ 0.5 × OpenBLAS at 512, 1 thread")


if __name__ == "__main__":
    main()
