"""The capture store's choice of format, measured: an append-only log of checksummed records (what doodled's
capture log does: one write and one fdatasync per group of records) against SQLite (WAL, synchronous=FULL, one
transaction per group), on the same disk, with records the size of a real captured drawing.

    python3 bench/capture/store_choice.py [DIR]     (DIR: where to write, default bench/out/capture/store-choice)

Both make every record durable before it is acknowledged; the table gives records per second for groups of 1
(one request at a time), 8 and 64 (concurrent requests sharing a sync), median of 3 runs each.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path

RECORD_BYTES = 505  # mean size of a captured stroke drawing (300 validation drawings, measured)
SECONDS = 1.5


def payloads(n: int) -> list[bytes]:
    return [os.urandom(RECORD_BYTES) for _ in range(n)]


def run_log(directory: Path, group: int) -> float:
    path = directory / "segment-000000000001.dcap"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    records = payloads(group)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        buf = bytearray()
        for p in records:
            header = struct.pack("<II", 0x50414344, len(p))
            buf += header + struct.pack("<I", zlib.crc32(header[4:] + p)) + p
        os.write(fd, buf)
        os.fdatasync(fd)
        done += group
    elapsed = time.perf_counter() - start
    os.close(fd)
    return done / elapsed


def run_sqlite(directory: Path, group: int) -> float:
    db = sqlite3.connect(directory / "captures.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS captures (id TEXT PRIMARY KEY, label TEXT, ts INTEGER, record BLOB)")
    records = payloads(group)
    done, start, n = 0, time.perf_counter(), 0
    while time.perf_counter() - start < SECONDS:
        db.execute("BEGIN")
        db.executemany("INSERT INTO captures VALUES (?, ?, ?, ?)",
                       [(f"{n + k:016x}", "cat", 0, p) for k, p in enumerate(records)])
        db.execute("COMMIT")
        n += group
        done += group
    elapsed = time.perf_counter() - start
    db.close()
    return done / elapsed


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/capture/store-choice")
    print(f"| group | capture log (write + fdatasync) rec/s | SQLite WAL, synchronous=FULL rec/s | log / SQLite |")
    print("|---|---|---|---|")
    for group in (1, 8, 64):
        results = {"log": [], "sqlite": []}
        for _ in range(3):
            for name, fn in (("log", run_log), ("sqlite", run_sqlite)):
                shutil.rmtree(root, ignore_errors=True)
                root.mkdir(parents=True)
                results[name].append(fn(root, group))
        log, lite = statistics.median(results["log"]), statistics.median(results["sqlite"])
        print(f"| {group} | {log:,.0f} | {lite:,.0f} | {log / lite:.2f} |")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
