"""Summarises one overload round of bench/hardening/run: capacity and overload slices measured alternately on the
same daemon (doodle-load --json reports), capacity slice i just before overload slice i.

    python3 bench/hardening/overload_round.py --round 1 --capacity c1.json c2.json --overload o1.json o2.json

The shared host's speed jumps between levels a quarter apart every few seconds (other tenants: the engine alone
on an idle core measures anywhere from 20,000 to 36,000 images/s minutes apart), so a ratio of two sums depends on
which slices happened to land on a slow spell. Each pair's ratio (good answers per second in overload slice i over
answers per second in capacity slice i) is off by the same factor up or down when a spell starts or ends between
its two slices, so their median is robust to those pairs; it is the round's figure, printed last, alone on a line
(the bench takes the median of the rounds). The ratio of all good answers to all capacity is printed beside it.
The latency figures are per slice (percentiles do not add up): the median of the slices' p50 and p99, and the
worst slice's p99.
"""
import argparse
import json
import statistics
from collections import Counter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--round", type=int, required=True)
    ap.add_argument("--capacity", nargs="+", required=True)
    ap.add_argument("--overload", nargs="+", required=True)
    args = ap.parse_args()
    cap = [json.load(open(f)) for f in args.capacity]
    ovl = [json.load(open(f)) for f in args.overload]
    capacity = sum(r["ok"] for r in cap) / sum(r["seconds"] for r in cap)
    good = sum(r["ok"] for r in ovl) / sum(r["seconds"] for r in ovl)
    offered = sum(r["requests"] for r in ovl) / sum(r["seconds"] for r in ovl)
    shed = dict(sum((Counter(r["errors"]) for r in ovl), Counter()))
    answered = sum(r["ok"] + r["okLate"] for r in ovl)
    within = sum(r.get("okWithinBudget") or 0 for r in ovl)
    print(f"round {args.round}: {len(cap)} capacity and {len(ovl)} overload slices, alternated")
    print("  capacity slices: " + ", ".join(f"{r['throughputPerSecond']:.0f}" for r in cap) + f" ok/s; {capacity:.0f} over all")
    pairs = [o["throughputPerSecond"] / c["throughputPerSecond"] for c, o in zip(cap, ovl)]
    print("  overload slices, good: " + ", ".join(f"{r['throughputPerSecond']:.0f}" for r in ovl)
          + f" ok/s; {good:.0f} over all = {good / capacity:.2f} of capacity")
    print("  good / capacity per pair: " + ", ".join(f"{p:.2f}" for p in pairs)
          + f"; median {statistics.median(pairs):.2f}")
    print(f"  offered {offered:.0f} requests/s = {offered / capacity:.1f}x capacity; shed {shed}; p50 of good "
          f"{statistics.median(r['p50Micros'] for r in ovl) / 1000:.0f} ms (median of slices), p99 "
          f"{statistics.median(r['p99Micros'] for r in ovl) / 1000:.0f} ms (median of slices; worst "
          f"{max(r['p99Micros'] for r in ovl) / 1000:.0f}); {sum(r['okLate'] for r in ovl)} more OK after the windows")
    if ovl[0].get("budgetMillis"):
        print(f"  model work on answers within {ovl[0]['budgetMillis']:.0f} ms: {within / max(1, answered):.3f} "
              f"({within} of {answered} OK answers)")
    print(f"{statistics.median(pairs):.4f}")


if __name__ == "__main__":
    main()
