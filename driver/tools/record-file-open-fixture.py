#!/usr/bin/env python3
"""Records a hades-driver stream of FILE_OPEN records (sensitive files).

usage: record-file-open-fixture.py OUT.bin   (as root, after `make -C driver`)

Registers one file with FILTER ADD FILE_SECRET (its inode and its device as
the kernel numbers it), then opens it read-only, write-only, through a hard
link and with O_PATH (no record), and opens an unregistered file (no record);
ends with stdin EOF (final STATS). test/fixtures/driver/README.md describes
the stream.
"""
import os
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "..", "build", "hades-driver")
SECRET = "/var/tmp/hades-fixture-secret"
LINK = "/var/tmp/hades-fixture-secret-link"
OTHER = "/var/tmp/hades-fixture-other"

OPENS = f"""
import os
os.close(os.open({SECRET!r}, os.O_RDONLY))
os.close(os.open({SECRET!r}, os.O_WRONLY | os.O_APPEND))
os.close(os.open({LINK!r}, os.O_RDWR))
os.close(os.open({SECRET!r}, os.O_PATH))
os.close(os.open({OTHER!r}, os.O_RDONLY))
"""


def frame(ftype, payload=b""):
    return struct.pack("<IHH", len(payload), ftype, 0) + payload


def filt(req, op, target, value):
    return frame(0x81, struct.pack("<IBBHI", req, op, target, 0, len(value)) + value)


def main():
    out = sys.argv[1]
    for p in (SECRET, OTHER):
        with open(p, "w") as f:
            f.write("x\n")
    if os.path.exists(LINK):
        os.unlink(LINK)
    os.link(SECRET, LINK)
    st = os.stat(SECRET)
    dev = os.major(st.st_dev) << 20 | os.minor(st.st_dev)
    with open(out, "wb") as f:
        drv = subprocess.Popen([DRIVER, "--backend", "ebpf", "--stats-interval-ms", "0",
                                "--hooks", "sched_process_exec,sched_process_fork,sched_process_exit,file_open"],
                               stdin=subprocess.PIPE, stdout=f)
        time.sleep(0.8)
        w = drv.stdin
        w.write(filt(20, 1, 11, struct.pack("<QII", st.st_ino, dev, 0)))
        w.flush()
        time.sleep(0.3)
        subprocess.run(["python3", "-c", OPENS], check=True, cwd="/var/tmp")
        time.sleep(0.5)
        w.close()
        rc = drv.wait(timeout=10)
    for p in (SECRET, LINK, OTHER):
        os.unlink(p)
    print(f"driver exit {rc}, {os.path.getsize(out)} bytes -> {out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
