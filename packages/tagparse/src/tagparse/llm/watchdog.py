"""Keep a server's whole process tree tied to the process that started it.

    python -m tagparse.llm.watchdog PARENT_PID -- COMMAND...

`ManagedServer` starts this as the leader of a new process group, with PR_SET_PDEATHSIG, so it is
told (SIGTERM) when `tagparse run` dies, even by SIGKILL. That signal alone would reach only the
direct child, and vLLM forks an API server, an engine core and workers: the kernel does not pass
it on, and a dead `tagparse run` can no longer kill the group itself. So this process, which only
waits, runs COMMAND in its group and, on SIGTERM/SIGINT/SIGHUP or when COMMAND exits, stops every
process left in the group: COMMAND first (SIGTERM), then the rest, SIGKILL after a grace
period. It exits with COMMAND's exit code, so a server that dies while starting still reports
its own code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

GRACE_S = 10.0


def group_members(pgid: int) -> list[int]:
    """PIDs in process group `pgid` except this process (Linux /proc; empty elsewhere)."""
    members = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # after "(comm)", which may hold spaces
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def stop_group(pgid: int, child: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM the server first, so that it shuts its own processes down in order (vLLM's engine
    core, and the resource tracker that unlinks its shared memory); then SIGTERM whoever is left
    in the group, and SIGKILL what still is after `grace_s`."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        _wait_for_group(pgid, child, 2.0)  # stragglers of an orderly shutdown
        for pid in group_members(pgid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if _wait_for_group(pgid, child, grace_s):
            return


def _wait_for_group(pgid: int, child: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        child.poll()  # reap our own child so it does not linger as a zombie
        if not group_members(pgid):
            return True
        time.sleep(0.1)
    return False


def main(argv: list[str]) -> int:
    parent, command = int(argv[0]), argv[argv.index("--") + 1 :]
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    child = subprocess.Popen(command)
    pgid = os.getpgrp()
    # the parent may have died before PDEATHSIG was armed: then nobody would ever signal us
    while not stopping and child.poll() is None and os.getppid() == parent:
        time.sleep(0.2)
    stop_group(pgid, child)
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
