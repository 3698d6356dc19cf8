"""Measure exec -> READY=1 for doodled with a fake NOTIFY_SOCKET (see bench/startup/run)."""
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def one_run(binary: str) -> float:
    path = os.path.join(tempfile.mkdtemp(), "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOODLED_")}
    env["NOTIFY_SOCKET"] = path
    start = time.monotonic()
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
                             "--http-listen", "127.0.0.1:0", "--log-level", "warning"], env=env)
    try:
        sock.settimeout(10)
        while True:
            message = sock.recv(4096).decode()
            if "READY=1" in message.split("\n"):
                return (time.monotonic() - start) * 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        sock.close()
        os.unlink(path)


def main() -> None:
    binary, runs = sys.argv[1], int(sys.argv[2])
    times = [one_run(binary) for _ in range(runs)]
    for i, t in enumerate(times):
        print(f"run {i + 1:2d}: READY=1 {t:6.1f} ms after exec")
    print(f"median {statistics.median(times):.1f} ms, min {min(times):.1f}, max {max(times):.1f} ({runs} runs; bar: 300 ms)")


if __name__ == "__main__":
    main()
