"""Python stubs for doodled's protocol, generated on first use with grpcio-tools into a cache directory.
The standard health service comes from grpcio-health-checking (``grpc_health.v1``).

    from doodle_proto import load
    pb, pb_grpc = load()
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
FILES = ["doodle/v1/doodle.proto"]


def load(cache: Path | None = None):
    """(doodle_pb2, doodle_pb2_grpc), regenerated when the .proto file changes."""
    digest = hashlib.sha1(b"".join((PROTO_ROOT / f).read_bytes() for f in FILES)).hexdigest()[:12]
    out = cache or Path(os.environ.get("DOODLE_PROTO_CACHE", Path(tempfile.gettempdir()) / f"doodle-proto-{digest}"))
    if not (out / "doodle" / "v1" / "doodle_pb2_grpc.py").exists():
        from grpc_tools import protoc

        out.mkdir(parents=True, exist_ok=True)
        rc = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"--python_out={out}", f"--grpc_python_out={out}", *FILES])
        if rc != 0:
            raise RuntimeError(f"grpc_tools.protoc failed ({rc})")
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    return importlib.import_module("doodle.v1.doodle_pb2"), importlib.import_module("doodle.v1.doodle_pb2_grpc")
