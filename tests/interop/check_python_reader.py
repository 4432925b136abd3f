#!/usr/bin/env python3
"""CI check that Python reads what tapeflow writes, with the standard library alone.

    check_python_reader.py WRITER READER_DIR

Runs WRITER (write_interop_files) into a temporary directory, then reads its .safetensors and .npy
files with examples/python/tapeflow_files.py (READER_DIR) and checks the names, shapes, metadata
and values, bit for bit where the values are given by formulas.
"""
import math
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

writer, reader_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, reader_dir)
import tapeflow_files  # noqa: E402

problems = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        problems.append(what)


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


RAMP = [(i - 5) / 4 for i in range(12)]
SPECIAL_BITS = [0x8000000000000000, 0x7FF8000000000123, 0x0000000000000001, 0x7FF0000000000000,
                0xFFF0000000000000, 0x7FEFFFFFFFFFFFFF, bits(0.1)]
PROBE = {"ramp": ((3, 4), RAMP), "scalar": ((), [-2.5]), "empty": ((0, 3), [])}

with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([writer, tmp], check=True)
    out = Path(tmp)

    weights, metadata = tapeflow_files.read_safetensors(out / "realnvp.safetensors")
    check(metadata == {"producer": "tapeflow", "linear_weight_layout": "[in, out]"}, f"RealNVP metadata {metadata}")
    expected = {}
    for k in range(8):
        expected[f"layers.{k}.scale"] = (2,)
        for j, (n_in, n_out) in zip((0, 2, 4), ((2, 64), (64, 64), (64, 4))):
            expected[f"layers.{k}.conditioner.{j}.weight"] = (n_in, n_out)
            expected[f"layers.{k}.conditioner.{j}.bias"] = (n_out,)
    check(list(weights) == list(expected), f"RealNVP names, in order ({len(weights)} tensors)")
    check(all(weights[n][0] == s for n, s in expected.items() if n in weights), "RealNVP shapes ([in, out] weights)")
    check(all(weights[f"layers.{k}.scale"][1] == [1.0, 1.0] for k in range(8)), "every coupling's scale starts at 1")
    check(all(v == 0.0 for k in range(8) for p in ("weight", "bias") for v in weights[f"layers.{k}.conditioner.4.{p}"][1]),
          "every conditioner's last layer starts at 0 (the identity coupling)")
    # PyTorch's default init, which tapeflow's Linear copies: W ~ U(±1/√in).
    first = weights["layers.0.conditioner.0.weight"][1]
    check(all(abs(v) <= 1 / math.sqrt(2) for v in first) and len(set(first)) == len(first),
          "the first layer's weights are distinct draws within ±1/√2")

    probe, metadata = tapeflow_files.read_safetensors(out / "probe.safetensors")
    check(metadata == {"purpose": "interop check"}, "probe metadata")
    check(list(probe) == ["ramp", "special", "scalar", "empty"], f"probe names {list(probe)}")
    check(probe["special"][0] == (7,) and [bits(v) for v in probe["special"][1]] == SPECIAL_BITS,
          "safetensors: -0.0, NaN payload, denormal, ±inf, max, 0.1 bit for bit")
    for name, (shape, values) in PROBE.items():
        check(probe[name] == (shape, values), f"safetensors {name}: shape {shape} and values")
        check(tapeflow_files.read_npy(out / f"{name}.npy") == (shape, values), f"npy {name}: shape {shape} and values")
    shape, values = tapeflow_files.read_npy(out / "special.npy")
    check(shape == (7,) and [bits(v) for v in values] == SPECIAL_BITS, "npy: the special values bit for bit")
    header = (out / "ramp.npy").read_bytes()[:128]
    check(header.startswith(b"\x93NUMPY\x01\x00") and (10 + header[8]) % 64 == 0, "npy: version 1.0, data aligned to 64")

    # The reader must not accept what tapeflow's loaders reject: a truncated copy.
    broken = out / "truncated.safetensors"
    broken.write_bytes((out / "probe.safetensors").read_bytes()[:-1])
    try:
        tapeflow_files.read_safetensors(broken)
        check(False, "a truncated safetensors file is rejected")
    except ValueError as e:
        check("'scalar'" in str(e), f"a truncated file is rejected, naming the tensor cut short: {e}")

print(f"{len(problems)} problems")
sys.exit(1 if problems else 0)
