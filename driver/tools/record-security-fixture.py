#!/usr/bin/env python3
"""Records a hades-driver stream holding every security record kind.

usage: record-security-fixture.py OUT.bin   (as root, after `make -C driver`)

Sends the FILTER frames an agent would (FILE_PREFIX with the recommended
defaults, UNIX_PATH, PROTECTED_PID, CONNECT_DEDUP_MS), then runs the
scenarios in SCENARIOS (build/hades-sec-exercise, python3, getent) and ends
with stdin EOF (final STATS). test/fixtures/driver/README.md describes what
each scenario leaves in the stream.
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "..", "build")
DRIVER = os.path.join(BUILD, "hades-driver")
EX = os.path.join(BUILD, "hades-sec-exercise")
WATCHED = "/tmp/hades-sec-watched"
UNWATCHED = "/var/tmp/hades-sec-unwatched"
UNIX_SOCK = "/run/hades-sec-test.sock"

# recommended defaults (driver/PROTOCOL.md, FILE_PREFIX)
PREFIXES = [
    "/etc/", "/root/.ssh/", "/home/*/.ssh/", "/var/spool/cron/", "/etc/cron",
    "/etc/systemd/system/", "/usr/lib/systemd/system/", "/etc/ld.so.preload",
    "/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/tmp/", "/dev/shm/",
]
UNIX_PATHS = ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
              UNIX_SOCK]

PY_TCP = """
import socket, sys
srv = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(5)
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
a, peer = srv.accept(); a.close(); c.close(); srv.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect(('127.0.0.1', 9999)); u.close()
try:
    socket.create_connection(('127.0.0.1', 1), timeout=1)
except OSError:
    pass
"""

SCENARIOS = [
    # network: listen + connect + accept (IPv4, IPv6), UDP connect, refused connect
    ["python3", "-c", PY_TCP, "127.0.0.1", "47100"],
    ["python3", "-c", PY_TCP, "::1", "47101"],
    [EX, "connect-nb", "127.0.0.1", "47102"],   # EINPROGRESS then tcp_established
    [EX, "connect-nb", "127.0.0.1", "1"],       # EINPROGRESS then tcp_failed (refused)
    [EX, "connect-unix", UNIX_SOCK],            # watched unix path
    [EX, "connect-unix", "/run/hades-not-watched.sock"],  # not watched: no record
    # DNS: connected UDP query + answer from the local responder; glibc resolver query
    [EX, "dns-udp", "127.0.0.1"],
    ["getent", "ahosts", "hades-fixture.example"],
    # process security
    [EX, "priv"],
    [EX, "ptrace"],
    [EX, "memfd-exec", "execveat"],
    [EX, "memfd-exec", "procfd"],
    [EX, "module", "/bin/true"],
    # files: watched (/tmp/) and unwatched (/var/tmp/) folders
    [EX, "files", WATCHED],
    [EX, "files", UNWATCHED],
]


def frame(ftype, payload=b""):
    return struct.pack("<IHH", len(payload), ftype, 0) + payload


def filt(req, op, target, value):
    return frame(0x81, struct.pack("<IBBHI", req, op, target, 0, len(value)) + value)


def dns_responder():
    """Answers every query on 127.0.0.1:53 with one A record 192.0.2.1."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))

    def loop():
        while True:
            q, peer = s.recvfrom(512)
            if len(q) < 12:
                continue
            end = 12
            while end < len(q) and q[end]:
                end += q[end] + 1
            question = q[12:end + 5]
            hdr = q[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00"
            ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, 1])
            s.sendto(hdr + question + ans, peer)

    threading.Thread(target=loop, daemon=True).start()


def unix_listener():
    try:
        os.unlink(UNIX_SOCK)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX)
    s.bind(UNIX_SOCK)
    s.listen(4)

    def loop():
        while True:
            c, _ = s.accept()
            c.close()

    threading.Thread(target=loop, daemon=True).start()


def tcp_listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)

    def loop():
        while True:
            c, _ = s.accept()
            c.close()

    threading.Thread(target=loop, daemon=True).start()


def main():
    out = sys.argv[1]
    os.makedirs(WATCHED, exist_ok=True)
    os.makedirs(UNWATCHED, exist_ok=True)
    dns_responder()
    unix_listener()
    tcp_listener(47102)
    # a "protected" process: stands for the agent; killed by the exerciser
    victim = subprocess.Popen(["sleep", "60"])
    env = dict(os.environ, RES_OPTIONS="timeout:1 attempts:1")
    with open(out, "wb") as f:
        drv = subprocess.Popen([DRIVER, "--backend", "ebpf", "--stats-interval-ms", "0"],
                               stdin=subprocess.PIPE, stdout=f)
        time.sleep(0.8)
        w = drv.stdin
        req = 20
        for p in PREFIXES:
            w.write(filt(req, 1, 6, p.encode()))
            req += 1
        for p in UNIX_PATHS:
            w.write(filt(req, 1, 8, p.encode()))
            req += 1
        w.write(filt(req, 1, 7, struct.pack("<I", victim.pid)))
        req += 1
        w.write(filt(req, 4, 9, struct.pack("<I", 1000)))
        req += 1
        w.write(frame(0x83, struct.pack("<I", 7)))
        w.flush()
        time.sleep(0.3)
        for cmd in SCENARIOS:
            subprocess.run(cmd, check=False, cwd="/tmp", env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
        # tampering: signals to the protected pid (0 = probe, then SIGTERM)
        subprocess.run([EX, "kill", str(victim.pid), "0"], stdout=subprocess.DEVNULL)
        subprocess.run([EX, "kill", str(victim.pid), "15"], stdout=subprocess.DEVNULL)
        victim.wait()
        time.sleep(0.5)
        w.close()
        rc = drv.wait(timeout=10)
    print(f"driver exit {rc}, {os.path.getsize(out)} bytes -> {out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
