#!/usr/bin/python3
"""Carry tutorial 07's RealNVP to PyTorch and check it computes the same density.

Optional, never run in CI: it needs PyTorch for the *system* Python (on Debian 12,
`apt-get install -y python3-torch`, which is for /usr/bin/python3, hence the shebang). Run
    ./tapeflow tutorial 07 --quick         # or a full run; writes out/07_realnvp/
    /usr/bin/python3 examples/python/load_realnvp_in_pytorch.py [--out out/07_realnvp]

It reads realnvp.safetensors (the trained parameters) with the standard-library reader beside it,
builds the same model in PyTorch (bench/compare_pytorch.py's torch_realnvp, the model the
benchmarks compare against), maps tapeflow's names and layouts onto it (nn/safetensors.hpp: a
Linear weight is [in, out] here and [out, in] in torch; "conditioner" is torch's "net"), evaluates
log q(x) on realnvp_points.npy and compares with tapeflow's values in realnvp_log_prob.npy.
Exits non-zero when the worst difference exceeds 1e-10.
"""
import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench"))
import tapeflow_files  # noqa: E402

TOLERANCE = 1e-10


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/07_realnvp", help="tutorial 07's output folder")
    args = parser.parse_args()
    import torch
    from compare_pytorch import alternating, torch_realnvp

    weights, metadata = tapeflow_files.read_safetensors(os.path.join(args.out, "realnvp.safetensors"))
    if metadata.get("linear_weight_layout") != "[in, out]":
        sys.exit(f"unexpected layout metadata {metadata}: not a file tapeflow wrote?")
    # The architecture, from the names and shapes: layers.<k>.conditioner.<j>.weight [in, out].
    couplings = 1 + max(int(re.match(r"layers\.(\d+)\.", n).group(1)) for n in weights)
    linears = sorted({int(m.group(1)) for n in weights if (m := re.match(r"layers\.0\.conditioner\.(\d+)\.weight", n))})
    dim = weights["layers.0.scale"][0][0]
    hidden = [weights[f"layers.0.conditioner.{j}.weight"][0][1] for j in linears[:-1]]
    print(f"RealNVP: D = {dim}, {couplings} couplings, conditioners {dim} → {' → '.join(map(str, hidden))} → {2 * dim}")

    # Layer k of tapeflow's make_realnvp has the alternating mask of parity k mod 2.
    flow = torch_realnvp(torch, dim, couplings, hidden, [alternating(torch, dim, 0), alternating(torch, dim, 1)])
    state = flow.state_dict()
    used = set()
    for name, (shape, values) in weights.items():
        t = torch.tensor(values, dtype=torch.float64).reshape(shape)
        torch_name = name.replace(".conditioner.", ".net.")
        if torch_name.endswith(".weight") and t.dim() == 2:
            t = t.T.contiguous()  # [in, out] → nn.Linear's [out, in]
        if torch_name not in state or state[torch_name].shape != t.shape:
            sys.exit(f"{name} {tuple(shape)} has no counterpart in the PyTorch model")
        state[torch_name] = t
        used.add(torch_name)
    missing = [n for n, _ in flow.named_parameters() if n not in used]
    if missing:
        sys.exit(f"the file lacks {missing}")
    flow.load_state_dict(state, strict=True)

    shape, values = tapeflow_files.read_npy(os.path.join(args.out, "realnvp_points.npy"))
    x = torch.tensor(values, dtype=torch.float64).reshape(shape)
    _, expected = tapeflow_files.read_npy(os.path.join(args.out, "realnvp_log_prob.npy"))
    with torch.no_grad():
        log_q = flow.log_prob(x)
    worst = (log_q - torch.tensor(expected, dtype=torch.float64)).abs().max().item()
    print(f"log q(x) on {shape[0]} points: PyTorch vs tapeflow, worst |difference| = {worst:.3e} "
          f"(tolerance {TOLERANCE:g}; |log q| up to {log_q.abs().max().item():.2f})")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
