"""Opens N connections to doodled's raw-TCP port and keeps each in the middle of a frame, sending one more byte
every few seconds (slowloris). Runs until killed or --seconds pass; prints how many connections the server
closed and when.

    python3 bench/hardening/slowloris.py --port 7431 --connections 1000 --seconds 30
"""
import argparse
import selectors
import socket
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7431)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between bytes on each connection")
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(args.connections):
        s = socket.create_connection((args.host, args.port))
        s.sendall(bytes([0, 0, 0, 3, 0xE8]))  # a frame of 1,000 bytes that will never be finished
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    opened = time.monotonic()
    print(f"slowloris: {len(socks)} connections open, each inside a frame", flush=True)
    closed_at = []
    open_socks = set(socks)
    next_byte = opened + args.interval
    while time.monotonic() - opened < args.seconds and open_socks:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                open_socks.discard(s)
                closed_at.append(time.monotonic() - opened)
        if time.monotonic() >= next_byte:
            for s in list(open_socks):
                try:
                    s.send(b"x")
                except OSError:
                    pass
            next_byte += args.interval
    if closed_at:
        print(f"slowloris: the server closed {len(closed_at)} of {len(socks)} connections, "
              f"{min(closed_at):.1f}-{max(closed_at):.1f} s after they opened", flush=True)
    else:
        print(f"slowloris: the server closed none of {len(socks)} connections in {args.seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
