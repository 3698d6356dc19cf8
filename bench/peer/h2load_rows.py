"""doodled, the Python peer and Triton under one external load generator: h2load (nghttp2, C) on each server's gRPC
unary endpoint, the same request shape (one real bitmap) and the same concurrency. Each server is started here
(its ready time measured), checked for correct answers on 200 real drawings (bench/peer/top1.py: top-1, and
agreement with onnxruntime run directly), then timed; every timed answer is checked against the server's own
counters (h2load counts any HTTP 200 as a success, even with a gRPC error in its trailers), and the server's
memory (RSS of its whole process tree) is read after the load. Appends one JSON row per server to RESULTS.

    python3 bench/peer/h2load_rows.py RESULTS --doodled BIN --triton-python VENV/bin/python [--duration 5]

Rows are named h2load/<server>/grpc-unary/bitmaps; bench/report.py prints them beside doodle-load's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def doodle_request(bitmap: bytes) -> bytes:
    """doodle.v1.PredictRequest{bitmap = 3, top_k = 4: 5}."""
    return field_bytes(3, bitmap) + varint(4 << 3) + varint(5)


def triton_request(bitmap: bytes) -> bytes:
    """inference.ModelInferRequest{model_name = 1, inputs = 5 [{name = 1, datatype = 2, shape = 3}],
    raw_input_contents = 7}."""
    shape = varint(1) + varint(784)
    tensor = field_bytes(1, b"bitmap") + field_bytes(2, b"UINT8") + field_bytes(3, shape)
    return field_bytes(1, b"quickdraw") + field_bytes(5, tensor) + field_bytes(7, bitmap)


@dataclass
class Server:
    name: str
    command: list[str]
    ready_url: str
    grpc_port: int
    path: str
    body: bytes
    metrics_url: str
    ok_pattern: str
    failure_pattern: str
    top1: list[str]
    # Directories put first on the server's PYTHONPATH (an onnxruntime copy that does not see AVX-512, say).
    pythonpath: str | None = None


def scrape(url: str, pattern: str) -> float:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return sum(float(m) for m in re.findall(pattern, text, re.MULTILINE))


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """RSS now and its peak (VmHWM), summed over `pid` and its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    rss = peak = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for key, value in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE):
            if key == "VmRSS":
                rss += int(value) / 1024
            else:
                peak += int(value) / 1024
    return rss, peak


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before it was ready")
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"not ready after {timeout} s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group (Triton's server and backend stubs are its children), then waits
    until every process of the group is gone (their ports free for the next server); SIGKILL after 30 s."""
    os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while True:
        process.poll()
        if not group_running(process.pid):
            break
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)
    process.wait()


def group_running(pgid: int) -> bool:
    """Whether any process of group `pgid` still runs (zombies waiting to be reaped do not count)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def h2load(server: Server, duration: float, warmup: float, connections: int, streams: int, work: Path) -> dict:
    body = work / f"{server.name}.body"
    body.write_bytes(frame(server.body))
    log = work / f"{server.name}.log"
    command = ["h2load", "-D", f"{duration:g}", f"--warm-up-time={warmup:g}", "-c", str(connections), "-m", str(streams),
               "-t", "1", "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body),
               f"--log-file={log}", f"http://127.0.0.1:{server.grpc_port}{server.path}"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=duration + warmup + 60)
    out = finished.stdout + finished.stderr
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    rate = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    if not done or not rate:
        raise RuntimeError(f"h2load printed no summary:\n{out}")
    latencies = sorted(int(line.split("\t")[2]) for line in log.read_text().splitlines() if line.count("\t") >= 2)
    def percentile(q: float) -> float:
        return float(latencies[min(len(latencies) - 1, int(q * len(latencies)))]) if latencies else float("nan")
    return {"h2loadSucceeded": int(done.group(4)), "h2loadFailed": int(done.group(5)) + int(done.group(6)),
            "throughputPerSecond": float(rate.group(3)), "p50Micros": percentile(0.5), "p90Micros": percentile(0.9),
            "p99Micros": percentile(0.99), "p999Micros": percentile(0.999), "maxMicros": float(latencies[-1]) if latencies else 0.0,
            "meanMicros": statistics.fmean(latencies) if latencies else 0.0}


def run(server: Server, args: argparse.Namespace, work: Path) -> dict:
    print(f"== h2load/{server.name}", file=sys.stderr)
    log = open(work / f"{server.name}.server.log", "w")
    started = time.monotonic()
    env = dict(os.environ)
    if server.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (server.pythonpath, env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(server.command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
                               env=env)
    try:
        ready = wait_ready(server.ready_url, process) - started
        checked = subprocess.run(server.top1, capture_output=True, text=True, cwd=REPO, timeout=300)
        if checked.returncode != 0:
            raise RuntimeError(f"{server.name}: the top-1 check failed:\n{checked.stderr}")
        check = json.loads(checked.stdout)
        ok_before = scrape(server.metrics_url, server.ok_pattern)
        failed_before = scrape(server.metrics_url, server.failure_pattern)
        row = h2load(server, args.duration, args.warmup, args.connections, args.streams, work)
        ok = scrape(server.metrics_url, server.ok_pattern) - ok_before
        failed = scrape(server.metrics_url, server.failure_pattern) - failed_before
        rss, peak = tree_rss_mb(process.pid)
    finally:
        stop(process)
    errors = {}
    if failed:
        errors["server_failures"] = int(failed)
    if row["h2loadFailed"]:
        errors["h2load_failed"] = row["h2loadFailed"]
    if ok < row["h2loadSucceeded"]:  # the server counted fewer good answers than h2load saw: some were errors
        errors["not_ok_by_server"] = int(row["h2loadSucceeded"] - ok)
    row.update(name=f"h2load/{server.name}/grpc-unary/bitmaps", loadGenerator="h2load", serverOK=int(ok),
               errors=errors, readySeconds=ready, rssMB=rss, peakRssMB=peak, top1=check["top1"],
               agreesWithOnnxruntime=check["agreesWithOnnxruntime"], connections=args.connections, streams=args.streams)
    print(json.dumps(row), file=sys.stderr)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path)
    ap.add_argument("--doodled", required=True)
    ap.add_argument("--kernels", default="auto")
    ap.add_argument("--triton-python", required=True, help="the Triton venv's python (bench/peer/triton/setup)")
    # Tuned on 2 cores (bench/RESULTS.md): two model instances of one onnxruntime thread each; the batching delay
    # made no difference at saturation.
    ap.add_argument("--triton-queue-delay-us", type=int, default=0)
    ap.add_argument("--triton-ort-threads", type=int, default=1)
    ap.add_argument("--triton-instances", type=int, default=2)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--streams", type=int, default=32, help="requests in flight per connection (h2load -m)")
    ap.add_argument("--only", help="comma-separated server names (doodled, peer, triton)")
    ap.add_argument("--peer-pythonpath", help="put first on the Python peer's PYTHONPATH (an onnxruntime copy)")
    ap.add_argument("--triton-pythonpath", help="put first on the Triton peer's PYTHONPATH (an onnxruntime copy)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="h2load-"))
    data = work / "top1.npz"
    subprocess.run([sys.executable, str(REPO / "bench/peer/top1.py"), "prepare", str(data)], check=True)
    bitmap = np.load(data)["images"][0].tobytes()  # one real drawing, the same for every server
    top1 = str(REPO / "bench/peer/top1.py")
    servers = [
        Server("doodled", [args.doodled, "--listen", "127.0.0.1:7641", "--grpc-listen", "127.0.0.1:7642",
                           "--http-listen", "127.0.0.1:7643", "--kernels", args.kernels],
               "http://127.0.0.1:7643/readyz", 7642, "/doodle.v1.Classifier/Predict", doodle_request(bitmap),
               "http://127.0.0.1:7643/metrics", r'^doodled_requests_total\{.*transport="grpc".*code="OK".*\} (\S+)',
               r'^doodled_requests_total\{(?=.*transport="grpc")(?!.*code="OK").*\} (\S+)',
               [sys.executable, top1, "doodle", "127.0.0.1:7642", str(data)]),
        Server("peer", [sys.executable, "bench/peer/server.py", "--port", "7652", "--metrics-port", "7654"],
               "http://127.0.0.1:7654/metrics", 7652, "/doodle.v1.Classifier/Predict", doodle_request(bitmap),
               "http://127.0.0.1:7654/metrics", r'^peer_requests_total\{code="OK"\} (\S+)',
               r'^peer_requests_total\{code="INVALID_ARGUMENT"\} (\S+)',
               [sys.executable, top1, "doodle", "127.0.0.1:7652", str(data)], args.peer_pythonpath),
        Server("triton", [args.triton_python, "bench/peer/triton/server.py", "--grpc-port", "7662", "--http-port", "7663",
                          "--metrics-port", "7664", "--queue-delay-us", str(args.triton_queue_delay_us),
                          "--ort-threads", str(args.triton_ort_threads), "--instances", str(args.triton_instances)],
               "http://127.0.0.1:7663/v2/models/quickdraw/ready", 7662, "/inference.GRPCInferenceService/ModelInfer",
               triton_request(bitmap), "http://127.0.0.1:7664/metrics",
               r'^nv_inference_request_success\{.*model="quickdraw".*\} (\S+)',
               # Requests h2load abandons when its time is up are counted CANCELED, not failed: they are not answers.
               r'^nv_inference_request_failure\{(?!.*reason="CANCELED").*model="quickdraw".*\} (\S+)',
               [args.triton_python, top1, "triton", "127.0.0.1:7662", str(data)], args.triton_pythonpath),
    ]
    only = set(args.only.split(",")) if args.only else None
    with open(args.results, "a") as results:
        for server in servers:
            if only and server.name not in only:
                continue
            results.write(json.dumps(run(server, args, work)) + "\n")
            results.flush()


if __name__ == "__main__":
    main()
