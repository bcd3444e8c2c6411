#!/usr/bin/env python3
"""Records a hades-driver stream of PROC_RENAME records (a process renaming itself).

usage: record-rename-fixture.py OUT.bin   (as root, after `make -C driver`)

One python3 renames itself with prctl(PR_SET_NAME) and by writing /proc/self/comm, sets the
same name again and names a thread of its own (no record for either), renames itself 12 times
in a row (over the per-process bound: 6 are not sent) and once more a second later (that record
carries the 6 in `unreported`). Ends with stdin EOF (final STATS).
test/fixtures/driver/README.md describes the stream.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "..", "build", "hades-driver")

RENAMES = r"""
import ctypes, threading, time
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NAME = 15
libc.prctl(PR_SET_NAME, b"kworker/0:1H", 0, 0, 0)
with open("/proc/self/comm", "w") as f:
    f.write("ksoftirqd/3")
libc.prctl(PR_SET_NAME, b"ksoftirqd/3", 0, 0, 0)
t = threading.Thread(target=lambda: libc.prctl(PR_SET_NAME, b"worker-thread", 0, 0, 0))
t.start()
t.join()
for i in range(12):
    libc.prctl(PR_SET_NAME, b"r%d" % i, 0, 0, 0)
time.sleep(1.1)
libc.prctl(PR_SET_NAME, b"after", 0, 0, 0)
"""


def main():
    out = sys.argv[1]
    with open(out, "wb") as f:
        drv = subprocess.Popen([DRIVER, "--backend", "ebpf", "--stats-interval-ms", "0",
                                "--hooks", "sched_process_exec,sched_process_fork,sched_process_exit,task_rename"],
                               stdin=subprocess.PIPE, stdout=f)
        time.sleep(0.8)
        subprocess.run(["python3", "-c", RENAMES], check=True, cwd="/var/tmp")
        time.sleep(0.5)
        drv.stdin.close()
        rc = drv.wait(timeout=10)
    print(f"driver exit {rc}, {os.path.getsize(out)} bytes -> {out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
