"""Samples doodled while a load runs: RSS (from /proc) and queue depth (from /metrics), every --every seconds,
for --seconds. Prints min/max of each and, with --json, the samples.

    python3 bench/hardening/sample.py --pid PID --metrics-port 7433 --seconds 10
"""
import argparse
import json
import re
import time
import urllib.request


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def queue_depth(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    m = re.search(r"^doodled_queue_depth_requests (\S+)$", text, re.M)
    return float(m.group(1)) if m else -1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--metrics-port", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--every", type=float, default=0.5)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    samples = []
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        try:
            samples.append((time.monotonic(), rss_mib(args.pid), queue_depth(args.metrics_port)))
        except OSError:
            break
        time.sleep(args.every)
    if not samples:
        print(f"{args.label}no samples")
        return
    rss = [s[1] for s in samples]
    depth = [s[2] for s in samples]
    print(f"{args.label}RSS {min(rss):.1f}-{max(rss):.1f} MiB, queue depth {min(depth):.0f}-{max(depth):.0f} "
          f"({len(samples)} samples over {samples[-1][0] - samples[0][0]:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
