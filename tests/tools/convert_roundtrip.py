#!/usr/bin/env python3
"""Round-trip test of tools/convert_checkpoint.py (ctest: tools/convert_checkpoint; needs torch).

    convert_roundtrip.py REPO_ROOT WORK_DIR [TEST_IO_EXECUTABLE]

Saves PyTorch checkpoints (a DataParallel-style state dict, a nested training checkpoint with non-tensor
entries, every supported dtype, a non-contiguous view, tied weights, bool/uint8/int16 buffers), converts them,
and checks that every tensor reads back bit for bit (parsing the safetensors file by hand, and with the
`safetensors` package when it is installed), that the errors are reported, and -- when the spikelm io test
executable is given -- that spikelm's C++ reader gets the same values.
"""

import collections
import json
import os
import struct
import subprocess
import sys

import torch


def read_safetensors(path):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    assert n % 8 == 0, "header not padded to 8 bytes"
    data = blob[8 + n:]
    dtypes = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.int16,
              "I64": torch.int64, "I32": torch.int32}
    out, end = {}, 0
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, e2 = e["data_offsets"]
        assert b == end, "tensors do not tile the data section"
        end = e2
        t = torch.frombuffer(bytearray(data[b:e2]), dtype=dtypes[e["dtype"]]) if e2 > b else \
            torch.zeros(0, dtype=dtypes[e["dtype"]])
        if e["dtype"] == "BF16":
            t = t.view(torch.bfloat16)
        out[name] = t.reshape(e["shape"])
    assert end == len(data), "trailing bytes"
    return out, header.get("__metadata__", {})


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(-1).view(torch.uint8) if a.numel() else a,
                                                                     b.view(-1).view(torch.uint8) if b.numel() else b)


def run(args, expect_ok=True):
    p = subprocess.run([sys.executable] + args, capture_output=True, text=True)
    if expect_ok and p.returncode != 0:
        raise SystemExit("converter failed: %s\n%s%s" % (args, p.stdout, p.stderr))
    if not expect_ok and p.returncode == 0:
        raise SystemExit("converter should have failed: %s" % args)
    return p


def main():
    root, work = sys.argv[1], sys.argv[2]
    test_io = sys.argv[3] if len(sys.argv) > 3 else None
    tool = os.path.join(root, "tools", "convert_checkpoint.py")
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)

    emb = torch.randn(10, 4)
    base = torch.randn(6, 5, dtype=torch.float64)
    model = collections.OrderedDict([
        ("module.emb.weight", emb),
        ("module.head.weight", emb),  # tied
        ("module.blocks.0.att.time_decay", torch.randn(4, dtype=torch.float32)),
        ("module.blocks.0.ffn.key.weight", base.t()),  # non-contiguous
        ("module.half", torch.randn(3, 3).half()),
        ("module.bf16", torch.randn(2, 7).bfloat16()),
        ("module.ln.num_batches_tracked", torch.tensor(17, dtype=torch.int64)),
        ("module.ids", torch.arange(-5, 5, dtype=torch.int32)),
        ("module.mask", torch.tensor([True, False, True])),
        ("module.bytes", torch.tensor([0, 255, 7], dtype=torch.uint8)),
        ("module.shorts", torch.tensor([-32768, 32767], dtype=torch.int16)),
        ("module.empty", torch.zeros(0, 3)),
        ("module.scalar", torch.tensor(2.5)),
    ])
    torch.save(model, os.path.join(work, "plain.pth"))
    run([tool, os.path.join(work, "plain.pth"), os.path.join(work, "plain.safetensors"),
         "--strip-prefix", "module.", "--metadata", "source=roundtrip"])
    got, meta = read_safetensors(os.path.join(work, "plain.safetensors"))
    assert meta == {"format": "pt", "source": "roundtrip"}, meta
    assert set(got) == {k[len("module."):] for k in model}, sorted(got)
    for k, v in model.items():
        want = v.contiguous()
        if want.dtype in (torch.bool, torch.uint8, torch.int16):
            want = want.to(torch.int32)
        assert same(got[k[len("module."):]], want), k
    try:
        import safetensors.torch as st
        ref = st.load_file(os.path.join(work, "plain.safetensors"))
        for k, v in ref.items():
            assert same(v, got[k]), k
        print("the safetensors package reads the converted file identically")
    except ImportError:
        print("safetensors package not installed: hand-parsed only")

    # A training checkpoint: the state dict is found under "model" (or named with --key); the non-tensor
    # entries of a state dict are an error unless skipped.
    ckpt = {"epoch": 3, "model": collections.OrderedDict([("w", torch.randn(2, 2)), ("step", 5)]),
            "optimizer": {"state": {}}}
    torch.save(ckpt, os.path.join(work, "ckpt.pt"))
    p = run([tool, os.path.join(work, "ckpt.pt"), os.path.join(work, "bad.safetensors")], expect_ok=False)
    assert "'step' is a int, not a tensor" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(work, "bad.safetensors"))
    run([tool, os.path.join(work, "ckpt.pt"), os.path.join(work, "ckpt.safetensors"), "--skip-non-tensors",
         "--dtype", "BF16"])
    got, _ = read_safetensors(os.path.join(work, "ckpt.safetensors"))
    assert list(got) == ["w"] and same(got["w"], ckpt["model"]["w"].bfloat16())
    p = run([tool, os.path.join(work, "ckpt.pt"), os.path.join(work, "x.safetensors"), "--key", "nope"],
            expect_ok=False)
    assert "no entry 'nope'" in p.stderr, p.stderr
    torch.save({"c": torch.zeros(2, dtype=torch.complex64)}, os.path.join(work, "complex.pt"))
    p = run([tool, os.path.join(work, "complex.pt"), os.path.join(work, "c.safetensors")], expect_ok=False)
    assert "unsupported dtype" in p.stderr, p.stderr
    leftovers = [f for f in os.listdir(work) if ".tmp." in f]
    assert not leftovers, leftovers

    if test_io:
        # spikelm's reader must see the same values: write them in the fixture text format.
        lines = []
        for name, t in got_plain_items(work):
            shape = list(t.shape) if t.dim() else [1]
            vals = t.reshape(-1)
            vals = vals.to(torch.float64).tolist() if t.is_floating_point() else vals.tolist()
            fmt = "%.17g" if t.is_floating_point() else "%d"
            lines.append("tensor %s %d %s\n%s\n" % (name, len(shape), " ".join(map(str, shape)),
                                                     " ".join(fmt % v for v in vals)))
        with open(os.path.join(work, "expect.txt"), "w") as f:
            f.write("".join(lines))
        env = dict(os.environ, SPIKELM_IO_CONVERTED=os.path.join(work, "plain.safetensors"),
                   SPIKELM_IO_CONVERTED_EXPECT=os.path.join(work, "expect.txt"))
        p = subprocess.run([test_io, "--test-case=convert_checkpoint: spikelm reads a converted file*",
                            "--no-skip=true", "--success=false"], env=env, capture_output=True, text=True)
        print(p.stdout[-2000:])
        if p.returncode != 0 or "1 passed" not in p.stdout:
            raise SystemExit("the C++ reader disagrees with the converter:\n" + p.stdout + p.stderr)
    print("convert_checkpoint round trip OK")
    return 0


def got_plain_items(work):
    got, _ = read_safetensors(os.path.join(work, "plain.safetensors"))
    return sorted(got.items())


if __name__ == "__main__":
    sys.exit(main())
