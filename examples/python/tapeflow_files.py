"""Read the files tapeflow writes with the Python standard library alone (json + struct).

    import tapeflow_files as tf
    weights, metadata = tf.read_safetensors("out/07_realnvp/realnvp.safetensors")
    shape, values = weights["layers.0.conditioner.0.weight"]    # (2, 64), 128 floats, row-major
    shape, values = tf.read_npy("out/07_realnvp/samples_flow.npy")

With NumPy installed, `numpy.load(path)` opens the .npy files directly, and
`safetensors.numpy.load_file(path)` (pip install safetensors) the weights; this module is for
machines without them, and is what tapeflow's own test suite reads its files back with
(tests/interop/check_python_reader.py). Both readers check the format as strictly as tapeflow's
loaders do and raise ValueError naming the file and the byte offset.

Layouts: tapeflow's Linear weight is [in, out] (y = x·W + b); PyTorch's nn.Linear holds [out, in].
The metadata says so ("linear_weight_layout": "[in, out]"); nn/safetensors.hpp has the full mapping.
"""
import ast
import json
import struct

NPY_MAGIC = b"\x93NUMPY"


def _product(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def read_safetensors(path):
    """{name: (shape tuple, list of floats)} and the "__metadata__" dict, for a file of F64 tensors."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: truncated at byte 0 (the 8-byte header length)")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > len(data) - 8:
        raise ValueError(f"{path}: the header length {n} at byte 0 runs past the end of the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the header at byte 8 is not a JSON object")
    metadata = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors, cursor = {}, 0
    # Every data byte belongs to exactly one tensor (the format forbids holes and overlaps).
    for name, entry in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        if set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"{path}: tensor {name!r} has keys {sorted(entry)}")
        if entry["dtype"] != "F64":
            raise ValueError(f"{path}: tensor {name!r} has dtype {entry['dtype']}, expected F64")
        shape = tuple(entry["shape"])
        begin, end = entry["data_offsets"]
        if begin != cursor or end > len(body) or end - begin != 8 * _product(shape):
            raise ValueError(f"{path}: tensor {name!r} has data_offsets [{begin}, {end}] for shape {shape} "
                             f"(expected to start at {cursor}, data section of {len(body)} bytes)")
        tensors[name] = (shape, list(struct.unpack_from(f"<{_product(shape)}d", body, begin)))
        cursor = end
    if cursor != len(body):
        raise ValueError(f"{path}: data bytes [{cursor}, {len(body)}) belong to no tensor")
    return tensors, metadata


def read_npy(path):
    """(shape tuple, list of floats) of a .npy file of float64 in C order."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != NPY_MAGIC:
        raise ValueError(f"{path}: not a .npy file (no \\x93NUMPY at byte 0)")
    major = data[6]
    if major == 1:
        (n,), start = struct.unpack_from("<H", data, 8), 10
    elif major in (2, 3):
        (n,), start = struct.unpack_from("<I", data, 8), 12
    else:
        raise ValueError(f"{path}: .npy version {major}.{data[7]} at byte 6")
    header = ast.literal_eval(data[start:start + n].decode("latin1"))
    if header.get("descr") != "<f8" or header.get("fortran_order") is not False:
        raise ValueError(f"{path}: header at byte {start} is {header}, expected '<f8' in C order")
    shape = tuple(header["shape"])
    body = data[start + n:]
    if len(body) != 8 * _product(shape):
        raise ValueError(f"{path}: {len(body)} data bytes at byte {start + n}, shape {shape} needs {8 * _product(shape)}")
    return shape, list(struct.unpack(f"<{_product(shape)}d", body))
