#!/usr/bin/env python3
"""Converts a PyTorch checkpoint (.pth / .pt state dict) to a safetensors file that spikelm loads by name.

    python3 tools/convert_checkpoint.py model.pth model.safetensors
    python3 tools/convert_checkpoint.py ckpt.pt out.safetensors --key state_dict --strip-prefix module.
    python3 tools/convert_checkpoint.py model.pth out.safetensors --dtype F32 --metadata source=SpikeGPT-46M

Needs torch (Debian: python3-torch); the library itself never does. The safetensors file is written by hand in
the layout of the Python `safetensors` package (the package is not needed): header JSON with "__metadata__"
first (keys sorted), then the tensors in data order (by dtype: I64, F64, F32, I32, BF16, F16; then by name),
padded with spaces to a multiple of 8 bytes; little-endian row-major data. The output is written to a
temporary file in the same directory, fsync'ed and renamed, so a failed conversion leaves no partial file.

Tensor names are kept as they are in the state dict (optionally without a prefix such as "module." that
DataParallel adds). Tensors are made contiguous; tied (shared) tensors are written once per name. Supported
dtypes are float64, float32, float16, bfloat16, int64 and int32; bool, uint8, int8 and int16 are widened to
int32 (exactly). Anything else (complex, quantized, non-tensor entries) is an error, unless
--skip-non-tensors is given for non-tensor entries such as an epoch number.
"""

import argparse
import json
import os
import struct
import sys
import tempfile

import torch

ST_DTYPE = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.int64: "I64", torch.int32: "I32"}
WIDEN = {torch.bool, torch.uint8, torch.int8, torch.int16}
ST_RANK = {"I64": 0, "F64": 1, "F32": 2, "I32": 3, "BF16": 4, "F16": 5}
CAST = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def load_state_dict(path, key):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 -- pickles with custom classes need the full loader
        print("note: weights-only loading failed (%s); loading with the full unpickler" % e, file=sys.stderr)
        obj = torch.load(path, map_location="cpu", weights_only=False)
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if key:
        for part in key.split("/"):
            if not isinstance(obj, dict) or part not in obj:
                raise SystemExit("error: no entry '%s' in the checkpoint (top-level keys: %s)"
                                 % (key, ", ".join(map(str, obj.keys())) if isinstance(obj, dict) else type(obj)))
            obj = obj[part]
    elif isinstance(obj, dict) and not any(torch.is_tensor(v) for v in obj.values()):
        for guess in ("state_dict", "model", "model_state_dict", "module"):
            if isinstance(obj.get(guess), dict):
                print("note: using the checkpoint's '%s' entry (choose another with --key)" % guess,
                      file=sys.stderr)
                obj = obj[guess]
                break
    if not isinstance(obj, dict):
        raise SystemExit("error: the checkpoint is a %s, not a state dict" % type(obj).__name__)
    return obj


def collect(state, strip_prefix, dtype, skip_non_tensors):
    tensors, problems = {}, []
    for name, value in state.items():
        name = str(name)
        if strip_prefix and name.startswith(strip_prefix):
            name = name[len(strip_prefix):]
        if not torch.is_tensor(value):
            if skip_non_tensors:
                print("note: skipping non-tensor entry '%s' (%s)" % (name, type(value).__name__), file=sys.stderr)
                continue
            problems.append("'%s' is a %s, not a tensor (use --skip-non-tensors)" % (name, type(value).__name__))
            continue
        t = value.detach().cpu()
        if t.is_quantized or t.is_complex() or t.is_sparse:
            problems.append("'%s' has unsupported dtype %s" % (name, t.dtype))
            continue
        if t.dtype in WIDEN:
            t = t.to(torch.int32)
        elif t.dtype not in ST_DTYPE:
            problems.append("'%s' has unsupported dtype %s" % (name, t.dtype))
            continue
        if dtype and t.is_floating_point():
            t = t.to(CAST[dtype])
        if name in tensors:
            problems.append("two entries are named '%s' after removing the prefix" % name)
            continue
        tensors[name] = t.contiguous()
    if problems:
        raise SystemExit("error: cannot convert:\n  " + "\n  ".join(problems))
    return tensors


def tensor_bytes(t):
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    data = t.numpy().tobytes()
    if sys.byteorder != "little":
        raise SystemExit("error: big-endian hosts are not supported")
    return data


def serialize(tensors, metadata):
    names = sorted(tensors, key=lambda n: (ST_RANK[ST_DTYPE[tensors[n].dtype]], n))
    header = {}
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    off, blobs = 0, []
    for n in names:
        b = tensor_bytes(tensors[n])
        header[n] = {"dtype": ST_DTYPE[tensors[n].dtype], "shape": list(tensors[n].shape),
                     "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    return [struct.pack("<Q", len(h)), h] + blobs


def write_atomic(path, chunks):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".tmp.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help="PyTorch checkpoint (.pth / .pt)")
    ap.add_argument("output", help="safetensors file to write")
    ap.add_argument("--key", help="entry holding the state dict, e.g. state_dict or model (nested: a/b)")
    ap.add_argument("--strip-prefix", default="", help="remove this prefix from names (e.g. module.)")
    ap.add_argument("--dtype", choices=sorted(CAST), help="convert floating-point tensors to this dtype")
    ap.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                    help="string metadata to store (repeatable)")
    ap.add_argument("--skip-non-tensors", action="store_true", help="ignore entries that are not tensors")
    args = ap.parse_args(argv)

    metadata = {"format": "pt"}
    for kv in args.metadata:
        if "=" not in kv:
            raise SystemExit("error: --metadata wants KEY=VALUE, got '%s'" % kv)
        k, v = kv.split("=", 1)
        metadata[k] = v
    state = load_state_dict(args.input, args.key)
    tensors = collect(state, args.strip_prefix, args.dtype, args.skip_non_tensors)
    chunks = serialize(tensors, metadata)
    write_atomic(args.output, chunks)
    total = sum(len(c) for c in chunks)
    print("wrote %s: %d tensors, %d bytes" % (args.output, len(tensors), total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
