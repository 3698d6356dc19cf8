#!/usr/bin/env python3
"""A copy of the installed onnxruntime that does not see AVX-512, so its AVX2 int8 kernels can be timed on an
AVX-512 machine beside doodled's AVX2 path (onnxruntime has no switch for this; its CPU probes choose the kernels).

    python3 bench/engine/ort_without_avx512.py DIR      # then: PYTHONPATH=DIR python3 bench/engine/ort_bench.py ...
    python3 bench/engine/ort_without_avx512.py DIR --python VENV/bin/python   # a copy of that interpreter's onnxruntime

onnxruntime decides from XCR0 (read with ``xgetbv``) whether the operating system saves AVX-512 state; every such
read in its x86-64 machine code is changed to drop the AVX-512 bits (5-7), as on a CPU without AVX-512. The copy is
then checked, in a fresh process, on a probe the two kernel families answer differently: an int8 MatMulInteger whose
u8 x s8 pair sums exceed int16. AVX-512 VNNI sums them exactly; AVX2's ``vpmaddubsw`` saturates each pair at 32,767.
The script fails unless the copy saturates, so a bench row it feeds is onnxruntime's AVX2 kernels or nothing.
Nothing outside DIR changes; the installed onnxruntime still takes its VNNI kernels.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

XGETBV = bytes.fromhex("0f01d0")
# xgetbv; mov %eax,%eax (the usual zero-extension of the low word)  ->  xgetbv; and $0x1f,%al
ZERO_EXTEND, DROP_AVX512 = bytes.fromhex("89c0"), bytes.fromhex("241f")
# and $0xe6,%r32 (the AVX-512 + AVX test mask, with or without a REX prefix) -> and $0x06,%r32: the test fails
MASK_E6 = [bytes([0x81, reg]) + bytes.fromhex("e6000000") for reg in range(0xE0, 0xE8)]
K, N = 64, 16  # the probe: 1 x 64 u8 (all 255) times 64 x 16 s8 (all 127)
EXACT, SATURATED = K * 255 * 127, (K // 2) * 32767


def text_section(blob: bytes) -> tuple[int, int]:
    """File offset and size of an ELF64 file's .text section."""
    if blob[:4] != b"\x7fELF" or blob[4] != 2:
        raise ValueError("not an ELF64 file")
    shoff, = struct.unpack_from("<Q", blob, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", blob, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", blob, shoff + i * shentsize) for i in range(shnum)]
    names_at = sections[shstrndx][4]
    for name, _, _, _, offset, size in sections:
        if blob[names_at + name : blob.index(b"\0", names_at + name)] == b".text":
            return offset, size
    raise ValueError("no .text section")


def hide_avx512(path: Path) -> int:
    """Rewrite every XCR0 read in ``path``'s .text so that it lacks the AVX-512 state bits; returns how many."""
    blob = bytearray(path.read_bytes())
    start, size = text_section(bytes(blob))
    patched, at = 0, blob.find(XGETBV, start, start + size)
    while at != -1:
        after = at + len(XGETBV)
        if blob[after : after + 2] == ZERO_EXTEND:
            blob[after : after + 2] = DROP_AVX512
            patched += 1
        else:
            window = bytes(blob[after : after + 200])
            hits = [(window.find(m), m) for m in MASK_E6 if m in window]
            if hits:
                offset, _ = min(hits)
                blob[after + offset + 2] = 0x06
                patched += 1
        at = blob.find(XGETBV, after, start + size)
    path.write_bytes(blob)
    return patched


def probe_model() -> bytes:
    """The probe: y = a x b, a 1 x K of 255 (u8), b K x N of 127 (s8), as an ONNX MatMulInteger model."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, K])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, N])],
        [onnx.numpy_helper.from_array(np.full((K, N), 127, np.int8), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


def probe(model: Path) -> int:
    """One element of the probe product as this process's onnxruntime computes it (needs only numpy besides)."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model.read_bytes(), opts, providers=["CPUExecutionProvider"])
    return int(session.run(None, {"a": np.full((1, K), 255, np.uint8)})[0][0, 0])


def probe_in(python: str, model: Path, pythonpath: Path | None) -> int:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(pythonpath)
    out = subprocess.run([python, __file__, "--probe", str(model)], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, nargs="?", help="where to put the copy (DIR/onnxruntime)")
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter whose onnxruntime is copied and probed (another venv's, say); default this one")
    ap.add_argument("--probe", type=Path, metavar="MODEL", help="print the probe's answer from this process's onnxruntime")
    args = ap.parse_args()
    if args.probe:
        print(probe(args.probe))
        return
    if args.dir is None:
        ap.error("DIR is required")
    found = subprocess.run([args.python, "-c", "import onnxruntime; print(onnxruntime.__version__); print(onnxruntime.__file__)"],
                           capture_output=True, text=True, check=True).stdout.split("\n")
    version, installed = found[0], Path(found[1]).parent
    copy = args.dir / "onnxruntime"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(installed, copy)
    libraries = sorted(p for p in copy.rglob("*.so*") if p.is_file() and p.read_bytes()[:4] == b"\x7fELF")
    counts = {p.name: hide_avx512(p) for p in libraries}
    print(f"onnxruntime {version} ({installed}): XCR0 reads rewritten: "
          + ", ".join(f"{name} {n}" for name, n in counts.items() if n), file=sys.stderr)
    model = args.dir / "probe.onnx"
    model.write_bytes(probe_model())
    original, hidden = probe_in(args.python, model, None), probe_in(args.python, model, args.dir)
    print(f"probe (exact {EXACT:,}, saturated {SATURATED:,}): installed {original:,}, copy {hidden:,}", file=sys.stderr)
    if hidden != SATURATED:
        shutil.rmtree(copy)
        sys.exit("the copy does not run onnxruntime's AVX2 int8 kernels; removed it")


if __name__ == "__main__":
    main()
