"""A SIGKILLed demo takes the tool it is running with it (issue 24, part 3: a SIGKILL mid-run
leaves no process behind). Found by killing a real `tagalign-demo --quick` during its
`tagparse run` stage: the parse went on for as long as it took, re-parented to init."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# a demo stand-in: the demo's own run_cli starting a long-running tool (one that writes its pid)
_DEMO = """
import sys
from pathlib import Path
from tagalign_toy.stages import run_cli
tool = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
run_cli([sys.executable, "-c", tool, sys.argv[1]], Path(sys.argv[2]))
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie (nothing here reaps an orphan that init does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_a_sigkilled_demo_takes_its_running_tool_with_it(tmp_path):
    pid_file = tmp_path / "tool.pid"
    demo = subprocess.Popen([sys.executable, "-c", _DEMO, str(pid_file), str(tmp_path / "log")])
    deadline = time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text()):
        assert demo.poll() is None and time.monotonic() < deadline, "the tool never started"
        time.sleep(0.05)
    tool = int(pid_file.read_text())
    assert _running(tool)
    os.kill(demo.pid, signal.SIGKILL)
    demo.wait(timeout=60)
    deadline = time.monotonic() + 30
    while _running(tool) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = _running(tool)
    if alive:
        os.kill(tool, signal.SIGKILL)
    assert not alive, "the tool outlived the SIGKILLed demo"
