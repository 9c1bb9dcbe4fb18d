#!/usr/bin/env python3
"""Readiness probe for the local Kafka broker (used by scripts/services.sh).

Sends a real Kafka Metadata request (API key 3, version 1) and succeeds (exit 0) only when
the broker answers with at least one live broker and a known controller; exit 1 otherwise.
Standard library only.

usage: kafka_ready.py HOST PORT [TIMEOUT_SECONDS]
"""
import socket
import struct
import sys


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def probe(host, port, timeout):
    client_id = b"duban-ready"
    # Request header v1: api_key, api_version, correlation_id, client_id (nullable string)
    header = struct.pack(">hhih", 3, 1, 4242, len(client_id)) + client_id
    body = struct.pack(">i", -1)  # topics: null => all topics
    msg = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(msg)) + msg)
        (size,) = struct.unpack(">i", read_exact(sock, 4))
        data = read_exact(sock, size)
    pos = 0

    def i32():
        nonlocal pos
        (v,) = struct.unpack_from(">i", data, pos)
        pos += 4
        return v

    def string():
        nonlocal pos
        (n,) = struct.unpack_from(">h", data, pos)
        pos += 2
        if n < 0:
            return None
        s = data[pos:pos + n].decode("utf-8", "replace")
        pos += n
        return s

    if i32() != 4242:
        raise ValueError("unexpected correlation id")
    brokers = []
    for _ in range(i32()):
        node_id = i32()
        bhost = string()
        bport = i32()
        string()  # rack
        brokers.append((node_id, bhost, bport))
    controller = i32()
    return brokers, controller


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9092
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    try:
        brokers, controller = probe(host, port, timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    if not brokers or controller < 0:
        print(f"not ready: brokers={brokers} controller={controller}", file=sys.stderr)
        return 1
    print(f"ready: brokers={brokers} controller={controller}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
