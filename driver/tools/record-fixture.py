#!/usr/bin/env python3
"""Records a hades-driver output stream while running known commands.

usage: record-fixture.py BACKEND OUT.bin   (as root, after `make -C driver`)

Drives the control channel too: STATS_REQUEST, FILTER (exe deny of
/usr/bin/yes), HOOK (fork disabled and re-enabled by name), one garbage frame
(unknown type -> LOG) and one bad FILTER (-> ACK ok=false). Ends with stdin
EOF, so the stream closes with the final STATS frame of a clean shutdown.
The commands and what to expect are listed in COMMANDS below; the .md next
to each fixture describes them for the decoder's tests.
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "..", "build", "hades-driver")
DEEP = "/tmp/hades-fixture/" + "/".join("d%02d" % i for i in range(40))
LONG = "A" * 5000

COMMANDS = [
    f"cd {DEEP} && /bin/echo 'hello world' $'\\xff\\xfe' x >/dev/null",
    "bash -c 'exit 3'",
    "bash -c 'kill -9 $$'",
    f"/bin/true {LONG}",
    "bash -c 'exec 1>/dev/tcp/127.0.0.1/47011; /bin/echo hi'",
    "bash -c 'exec 1>/dev/tcp/::1/47012; /bin/echo hi6'",
    "/usr/bin/yes | head -c 10 >/dev/null",  # yes is denied by the FILTER below
]


def frame(ftype, payload=b""):
    return struct.pack("<IHH", len(payload), ftype, 0) + payload


def listener(family, addr, port):
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(8)

    def loop():
        while True:
            c, _ = s.accept()
            c.recv(64)
            c.close()

    threading.Thread(target=loop, daemon=True).start()


def main():
    backend, out = sys.argv[1], sys.argv[2]
    os.makedirs(DEEP, exist_ok=True)
    listener(socket.AF_INET, "127.0.0.1", 47011)
    listener(socket.AF_INET6, "::1", 47012)
    with open(out, "wb") as f:
        drv = subprocess.Popen([DRIVER, "--backend", backend, "--stats-interval-ms", "0"],
                               stdin=subprocess.PIPE, stdout=f)
        time.sleep(0.5)
        w = drv.stdin
        w.write(frame(0x83, struct.pack("<I", 7)))                      # STATS_REQUEST id 7
        exe = b"/usr/bin/yes"
        w.write(frame(0x81, struct.pack("<IBBHI", 8, 1, 2, 0, len(exe)) + exe))  # FILTER add exe deny
        w.write(frame(0x81, struct.pack("<IBBHI", 9, 1, 1, 0, 2) + b"xx"))       # bad pid length
        w.write(frame(0x99, b"garbage"))                                 # unknown type -> LOG
        name = b"sched_process_fork"
        w.write(frame(0x82, struct.pack("<IBBH", 10, 0, 0, 0xFFFF) + name))      # disable fork
        w.flush()
        time.sleep(0.2)
        subprocess.run(["bash", "-c", "/bin/true fork-disabled"], check=False)
        w.write(frame(0x82, struct.pack("<IBBH", 11, 1, 0, 1)))          # enable fork by id
        w.flush()
        time.sleep(0.2)
        for cmd in COMMANDS:
            subprocess.run(["bash", "-c", cmd], check=False, cwd="/tmp",
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        w.close()  # EOF = clean shutdown
        rc = drv.wait(timeout=10)
    print(f"driver exit {rc}, {os.path.getsize(out)} bytes -> {out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
