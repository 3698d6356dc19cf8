"""Prints bench/run's results side by side and checks them against the [load] and [grpc] bars."""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    rows = {r["name"]: r for r in (json.loads(line) for line in open(path))}

    def get(name: str, key: str = "throughputPerSecond") -> float:
        return rows[name][key] if name in rows else float("nan")

    if "machine" in rows:
        print(f"CPU: {rows['machine']['cpu']}; doodled kernels: {rows['machine']['kernels']}")
    print(f"{'run':<44}{'ok/s':>10}{'p50 us':>9}{'p90 us':>9}{'p99 us':>9}{'p99.9 us':>10}{'max us':>9}  errors")
    for name, r in rows.items():
        if "p90Micros" not in r:  # machine line, capacity search and loopback floor: above or in the checks below
            continue
        errors = " ".join(f"{k}={v}" for k, v in sorted(r["errors"].items())) or "-"
        print(f"{name:<44}{r['throughputPerSecond']:>10.0f}{r['p50Micros']:>9.0f}{r['p90Micros']:>9.0f}"
              f"{r['p99Micros']:>9.0f}{r['p999Micros']:>10.0f}{r['maxMicros']:>9.0f}  {errors}")

    bitmaps = get("doodled/tcp/bitmaps/saturated")
    strokes = get("doodled/tcp/strokes/saturated")
    peer_bitmaps = get("peer/grpc-unary/bitmaps/saturated")
    peer_strokes = get("peer/grpc-unary/strokes/saturated")
    nobatch = get("doodled-max-batch-1/tcp/bitmaps/saturated")
    grpc = max(get("doodled/grpc-unary/bitmaps/saturated"), get("doodled/grpc-stream/bitmaps/saturated"))
    uniform = get("doodled/tcp/bitmaps/80pct-uniform", "p99Micros")
    poisson = get("doodled/tcp/bitmaps/80pct-poisson", "p99Micros")
    uniform_closed = get("doodled/tcp/bitmaps/80pct-closed-uniform", "p99Micros")
    poisson_closed = get("doodled/tcp/bitmaps/80pct-closed-poisson", "p99Micros")
    open_capacity = get("doodled/tcp/bitmaps/open-loop-capacity")
    def kept_up(name: str) -> bool:
        r = rows.get(name)
        return bool(r) and not r["errors"] and r["throughputPerSecond"] >= 0.97 * (r.get("offeredRatePerSecond") or 0)

    sustained = kept_up("doodled/tcp/bitmaps/80pct-uniform") and kept_up("doodled/tcp/bitmaps/80pct-poisson")
    sustained_closed = kept_up("doodled/tcp/bitmaps/80pct-closed-uniform") and kept_up("doodled/tcp/bitmaps/80pct-closed-poisson")
    c1 = rows.get("doodled/tcp/bitmaps/c1") or {}
    c1_core = rows.get("doodled/tcp/bitmaps/c1-one-core") or {}
    floor = rows.get("floor/c-echo/unpinned") or {}
    floor_core = rows.get("floor/c-echo/one-core") or {}
    def poisson_check(of: str, poisson: float, uniform: float, sustained: bool) -> tuple[str, bool]:
        invalid = "" if sustained else "; INVALID: a run shed load or fell behind its rate (overloaded)"
        return (f"Poisson vs uniform p99 at 80 % of {of}: {poisson:.0f} / {uniform:.0f} us = {poisson / uniform:.2f}x "
                f"(bar <= 1.5x){invalid}", sustained and poisson <= 1.5 * uniform)

    checks = [
        (f"saturated bitmaps vs peer: {bitmaps / peer_bitmaps:.1f}x (bar >= 10x)", bitmaps >= 10 * peer_bitmaps),
        (f"saturated strokes vs peer: {strokes / peer_strokes:.1f}x (bar >= 10x)", strokes >= 10 * peer_strokes),
        (f"bitmaps {bitmaps:.0f}/s (bar >= 40,000)", bitmaps >= 40_000),
        (f"strokes {strokes:.0f}/s (bar >= 20,000)", strokes >= 20_000),
        (f"concurrency 1, TCP bitmaps: p50 {c1.get('p50Micros', 0):.0f} us (bar <= 60), p99 {c1.get('p99Micros', 0):.0f} us "
         f"(bar <= 200); C echo floor across cores p50 {floor.get('p50Micros', 0):.0f} / p99 {floor.get('p99Micros', 0):.0f} us",
         c1.get("p50Micros", 1e9) <= 60 and c1.get("p99Micros", 1e9) <= 200),
        (f"concurrency 1, TCP bitmaps, doodled and client on one core: p50 {c1_core.get('p50Micros', 0):.0f} us, "
         f"p99 {c1_core.get('p99Micros', 0):.0f} us; C echo floor on one core p50 {floor_core.get('p50Micros', 0):.0f} / "
         f"p99 {floor_core.get('p99Micros', 0):.0f} us",
         c1_core.get("p50Micros", 1e9) <= 60 and c1_core.get("p99Micros", 1e9) <= 200),
        (f"batching vs --max-batch 1: {bitmaps / nobatch:.2f}x (bar >= 5x)", bitmaps >= 5 * nobatch),
        poisson_check(f"open-loop capacity ({open_capacity:.0f}/s)", poisson, uniform, sustained),
        poisson_check("closed-loop capacity", poisson_closed, uniform_closed, sustained_closed),
        (f"gRPC {grpc:.0f}/s (bar >= 20,000)", grpc >= 20_000),
    ]
    print()
    for text, ok in checks:
        print(f"{'MET    ' if ok else 'NOT MET'} {text}")


if __name__ == "__main__":
    main(sys.argv[1])
