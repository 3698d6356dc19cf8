"""Prints bench/run's results side by side and checks them against the [load], [grpc] and [peer-triton] bars, and,
on a kernel path other than AVX-512 VNNI, the [engine-isa] end-to-end bars (the absolute throughput and latency bars
were set on AVX-512 VNNI and are printed there as information only)."""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    rows = {r["name"]: r for r in (json.loads(line) for line in open(path))}

    def get(name: str, key: str = "throughputPerSecond") -> float:
        return rows[name][key] if name in rows else float("nan")

    if "machine" in rows:
        print(f"CPU: {rows['machine']['cpu']}; doodled kernels: {rows['machine']['kernels']}")
    if "peer-onnxruntime" in rows:
        print(f"Python peer's onnxruntime kernels: {rows['peer-onnxruntime']['kernels']}")
    if "triton-onnxruntime" in rows:
        print(f"Triton peer's onnxruntime kernels: {rows['triton-onnxruntime']['kernels']}")
    kernels = rows.get("machine", {}).get("kernels", "")
    engine = rows.get("engine/batch-1") or {}
    model_us = 1e6 / engine["images_per_s"] if engine.get("images_per_s") else float("nan")
    if engine:
        print(f"The model alone, batch 1, one core ({kernels}): {model_us:.0f} us")
    print(f"{'run':<44}{'ok/s':>10}{'p50 us':>9}{'p90 us':>9}{'p99 us':>9}{'p99.9 us':>10}{'max us':>9}  errors")
    for name, r in rows.items():
        if "p90Micros" not in r or name.startswith("h2load/"):  # machine line, capacity search, loopback floor, h2load
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

    # The servers side by side, one external load generator (h2load, gRPC unary, one real bitmap, same
    # concurrency), plus doodle-load's rows for doodled's other transports.
    h2 = {name.split("/")[1]: r for name, r in rows.items() if name.startswith("h2load/")}
    if h2:
        print()
        print("| server | endpoint | load generator | ok/s | p50 us | p99 us | RSS MB (peak) | ready s | top-1, 200 drawings | = onnxruntime | errors |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        doodled = h2.get("doodled", {})
        for label, r in (("doodled", doodled), ("Python peer (grpcio + onnxruntime)", h2.get("peer")),
                         ("Triton 2.51 (PyTriton 0.7.0, onnxruntime)", h2.get("triton"))):
            if not r:
                continue
            errors = " ".join(f"{k}={v}" for k, v in sorted(r["errors"].items())) or "none"
            endpoint = "ModelInfer" if "Triton" in label else "Predict"
            print(f"| {label} | gRPC unary {endpoint} | h2load -c {r['connections']} -m {r['streams']} | "
                  f"{r['throughputPerSecond']:,.0f} | {r['p50Micros']:,.0f} | {r['p99Micros']:,.0f} | "
                  f"{r['rssMB']:.0f} ({r['peakRssMB']:.0f}) | {r['readySeconds']:.2f} | {100 * r['top1']:.1f} % | "
                  f"{100 * r['agreesWithOnnxruntime']:.0f} % | {errors} (server counted {r['serverOK']:,} OK) |")
        for name, endpoint, load in (("doodled/tcp/bitmaps/saturated", "raw TCP", "doodle-load 8 x 16"),
                                     ("doodled/grpc-unary/bitmaps/saturated", "gRPC unary", "doodle-load 4 x 32"),
                                     ("doodled/http/bitmaps/saturated", "HTTP JSON", "doodle-load 4 x 16")):
            r = rows.get(name)
            if r and doodled:
                errors = " ".join(f"{k}={v}" for k, v in sorted(r["errors"].items())) or "none"
                print(f"| doodled | {endpoint} | {load} | {r['throughputPerSecond']:,.0f} | {r['p50Micros']:,.0f} | "
                      f"{r['p99Micros']:,.0f} | (as above) | | {100 * doodled['top1']:.1f} % | | {errors} |")

    triton = h2.get("triton", {})
    triton_ok = bool(triton) and triton.get("serverOK", 0) > 0 and not triton.get("errors")
    triton_rate = triton.get("throughputPerSecond", float("nan"))
    h2_doodled = h2.get("doodled", {}).get("throughputPerSecond", float("nan"))
    h2_peer = h2.get("peer", {}).get("throughputPerSecond", float("nan"))

    # Bars set on AVX-512 VNNI (absolute figures) are checked there only; elsewhere they are shown for information.
    on_vnni = kernels in ("avx512vnni", "")
    def absolute(text: str, ok: bool) -> tuple[str, bool | None]:
        return (text, ok) if on_vnni else (f"{text} [an AVX-512 VNNI bar]", None)

    def c1_bar(r: dict, floor: dict, where: str) -> tuple[str, bool]:
        # [engine-isa]: p50 no more than the loopback floor of the same run plus 1.5 batch-1 model runs plus 30 us.
        bar = floor.get("p50Micros", float("nan")) + 1.5 * model_us + 30
        p50 = r.get("p50Micros", float("nan"))
        return (f"concurrency 1, TCP bitmaps, {where}: p50 {p50:.0f} us (bar: C echo floor {floor.get('p50Micros', 0):.0f} "
                f"+ 1.5 x model {model_us:.0f} + 30 = {bar:.0f} us)", p50 <= bar)

    checks = [
        (f"Triton rows correct: {triton.get('serverOK', 0):,} OK counted by Triton, errors {triton.get('errors', 'missing')}",
         triton_ok),
        (f"gRPC unary under h2load, doodled vs Triton: {h2_doodled / triton_rate:.1f}x (bar >= 5x)", h2_doodled >= 5 * triton_rate),
        (f"gRPC unary under h2load, doodled vs the Python peer: {h2_doodled / h2_peer:.1f}x (bar >= 10x)", h2_doodled >= 10 * h2_peer),
        (f"raw TCP (doodle-load) vs Triton (h2load): {bitmaps / triton_rate:.1f}x (bar >= 10x)", bitmaps >= 10 * triton_rate),
        (f"saturated bitmaps vs peer: {bitmaps / peer_bitmaps:.1f}x (bar >= 10x)", bitmaps >= 10 * peer_bitmaps),
        (f"saturated strokes vs peer: {strokes / peer_strokes:.1f}x (bar >= 10x)", strokes >= 10 * peer_strokes),
        absolute(f"bitmaps {bitmaps:.0f}/s (bar >= 40,000)", bitmaps >= 40_000),
        absolute(f"strokes {strokes:.0f}/s (bar >= 20,000)", strokes >= 20_000),
        absolute(f"concurrency 1, TCP bitmaps: p50 {c1.get('p50Micros', 0):.0f} us (bar <= 60), p99 {c1.get('p99Micros', 0):.0f} us "
                 f"(bar <= 200); C echo floor across cores p50 {floor.get('p50Micros', 0):.0f} / p99 {floor.get('p99Micros', 0):.0f} us",
                 c1.get("p50Micros", 1e9) <= 60 and c1.get("p99Micros", 1e9) <= 200),
        absolute(f"concurrency 1, TCP bitmaps, doodled and client on one core: p50 {c1_core.get('p50Micros', 0):.0f} us, "
                 f"p99 {c1_core.get('p99Micros', 0):.0f} us; C echo floor on one core p50 {floor_core.get('p50Micros', 0):.0f} / "
                 f"p99 {floor_core.get('p99Micros', 0):.0f} us",
                 c1_core.get("p50Micros", 1e9) <= 60 and c1_core.get("p99Micros", 1e9) <= 200),
        (f"batching vs --max-batch 1: {bitmaps / nobatch:.2f}x (bar >= 5x)", bitmaps >= 5 * nobatch),
        poisson_check(f"open-loop capacity ({open_capacity:.0f}/s)", poisson, uniform, sustained),
        poisson_check("closed-loop capacity", poisson_closed, uniform_closed, sustained_closed),
        absolute(f"gRPC {grpc:.0f}/s (bar >= 20,000)", grpc >= 20_000),
    ]
    if not on_vnni:
        checks += [c1_bar(c1, floor, "across cores"), c1_bar(c1_core, floor_core, "doodled and client on one core")]
    print()
    for text, ok in checks:
        print(f"{'info   ' if ok is None else 'MET    ' if ok else 'NOT MET'} {text}")


if __name__ == "__main__":
    main(sys.argv[1])
