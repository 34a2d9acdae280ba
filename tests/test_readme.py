"""The README opens with exactly two commands (demo, tests) and CI runs the test command."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _block(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {name} -->\n```\n(.*?)\n```\n<!-- /{name} -->", text, re.DOTALL)
    assert m, f"README has no {name} block"
    return m.group(1).strip()


def test_readme_opens_with_demo_then_test_command():
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"```\n(.*?)\n```", text.split("---")[0], re.DOTALL)
    assert commands == [_block("demo-command"), _block("test-command")]
    assert "pytest" in _block("test-command")
    assert "pip install -q uv" in _block("demo-command")  # works where only Python and pip exist


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    extracted = subprocess.run(
        [
            "bash",
            "-c",
            (
                "sed -n '/<!-- test-command -->/,/<!-- \\/test-command -->/p' README.md "
                "| grep -v '^<!--' | grep -v '^```'"
            ),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert extracted == _block("test-command")
    assert "test_cmd" in script and 'bash -c "$test_cmd"' in script
