"""Child processes that die with their parent, even when the parent is killed by SIGKILL.

Linux's PR_SET_PDEATHSIG asks the kernel to signal a process when the thread that started it
ends; nothing in the parent has to run, so a SIGKILLed `tagparse run` still takes its parser
workers (each holding a model in memory) with it. Elsewhere this is a no-op: the pool's own
shutdown is then the only cleanup.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

_PR_SET_PDEATHSIG = 1


def _libc_prctl():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux (or no libc): no parent-death signal
        return None


_PRCTL = _libc_prctl()  # resolved on import: a forked child then only makes the syscall


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """In a child process: receive `sig` when the parent dies; exit now if it already has.

    `parent_pid` closes the race where the parent died before the signal was armed (the child
    was then re-parented and would wait forever).
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(sig))
    if os.getppid() != parent_pid:
        os._exit(1)
