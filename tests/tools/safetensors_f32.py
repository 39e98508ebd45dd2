"""Reads a float32 safetensors file into torch tensors: the helper of the tools tests and of
benchmarks/compare/ (every file they read is written by spikelm's programs or by tools/, in F32)."""

import json
import struct

import torch


def read_safetensors(path):
    """Returns ({name: float32 tensor}, metadata dict); any other dtype is an assertion error."""
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, e2 = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(blob[8 + n + b:8 + n + e2]), dtype=torch.float32).reshape(
            e["shape"]).clone()
    return out, meta
