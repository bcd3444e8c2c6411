#!/usr/bin/env python3
"""Records EXEC version 2 records (executable identity) for the decoder tests.

usage: record-exec-id-fixture.py OUT.bin   (as root, after `make -C driver`)

Runs the eBPF driver with `--hooks sched_process_exec` only, then: executes a
copy of /bin/true twice (same identity), copies /bin/echo over it (same inode,
new size and mtime) and executes it again, and executes a memfd. Also sends a
HOOK enable of sched_process_fork, which was not requested (-> ACK ENOENT).
test/fixtures/driver/README.md describes what to find.
"""
import os
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.realpath(__file__))
DRIVER = os.path.normpath(os.path.join(HERE, "..", "build", "hades-driver"))
EXERCISE = os.path.normpath(os.path.join(HERE, "..", "build", "hades-sec-exercise"))
DIR = "/tmp/hades-exe-id"
PROG = DIR + "/prog"


def frame(ftype, payload=b""):
    return struct.pack("<IHH", len(payload), ftype, 0) + payload


def run(*argv):
    subprocess.run(list(argv), check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    out = sys.argv[1]
    os.makedirs(DIR, exist_ok=True)
    shutil.copyfile("/bin/true", PROG)
    os.chmod(PROG, 0o755)
    with open(out, "wb") as f:
        drv = subprocess.Popen([DRIVER, "--backend", "ebpf", "--hooks", "sched_process_exec",
                                "--stats-interval-ms", "0"], stdin=subprocess.PIPE, stdout=f)
        time.sleep(0.5)
        w = drv.stdin
        name = b"sched_process_fork"
        w.write(frame(0x82, struct.pack("<IBBH", 12, 1, 0, 0xFFFF) + name))  # -> ENOENT
        w.flush()
        time.sleep(0.2)
        run(PROG, "exe-id-1")
        run(PROG, "exe-id-2")
        time.sleep(0.05)  # a visibly different mtime
        # copying over the file keeps its inode: only size and times change
        shutil.copyfile("/bin/echo", PROG)
        run(PROG, "exe-id-3")
        run(EXERCISE, "memfd-exec", "execveat")
        time.sleep(0.5)
        w.close()  # EOF = clean shutdown, final STATS
        rc = drv.wait(timeout=10)
    print(f"driver exit {rc}, {os.path.getsize(out)} bytes -> {out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
