"""The eval CLI derived from its API (issue 20, item 2): the `Protocol`, `SuiteRequest` and
`ModelSpec` fields are the one source of each flag's name, default, range, choices and help;
and classify's renamed flags still work under their old names (item 4)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import click
from click.testing import CliRunner
from tagalign_eval.cli import CLASSIFY_RENAMED, main
from tagalign_eval.limits import RANGES
from tagalign_eval.protocol import PRESETS, Protocol
from tagalign_eval.protocols import resolve_protocol
from tagalign_eval.request import SuiteRequest
from tagparse.fieldoptions import field_options, setting
from tagparse.numbers import Range


@dataclass(frozen=True)
class _WithNewSetting(SuiteRequest):
    """A run setting added the way a maintainer adds one: a field, nothing else."""

    tile_overlap: float = setting(
        0.25, help="Share of a tile shared with its neighbour.", range=Range(0.0, 0.9)
    )


def _probe(cls: type, **kwargs) -> click.Command:
    @click.command()
    @field_options(cls, **kwargs)
    def probe(**kw):
        click.echo(repr(dict(sorted(kw.items()))))

    return probe


def test_a_new_field_becomes_a_flag_with_its_default_range_and_help():
    command = _probe(_WithNewSetting, names=["tile_overlap"])
    runner = CliRunner()
    help_text = runner.invoke(command, ["--help"]).output
    assert "--tile-overlap" in help_text and "Share of a tile shared" in help_text
    assert "default: 0.25" in help_text and "0<=x<=0.9" in help_text
    assert runner.invoke(command, []).output.strip() == "{'tile_overlap': 0.25}"
    assert runner.invoke(command, ["--tile-overlap", "0.5"]).output.strip() == (
        "{'tile_overlap': 0.5}"
    )
    refused = runner.invoke(command, ["--tile-overlap", "0.95"])
    assert refused.exit_code == 2 and "0<=x<=0.9" in refused.output


def test_override_flags_default_to_the_preset():
    """`unset=True`: a protocol flag not given is None (the preset's value stays)."""
    command = _probe(Protocol, names=["crop", "head", "pamr", "templates"], unset=True)
    out = CliRunner().invoke(command, ["--head", "sigmoid", "--template", "a {}."]).output
    given = {"crop": None, "head": "sigmoid", "pamr": None, "templates": ("a {}.",)}
    assert out.strip() == repr(given)
    assert "default:" not in CliRunner().invoke(command, ["--help"]).output


def test_every_field_setting_is_a_flag_of_a_benchmark_command():
    help_text = CliRunner().invoke(main, ["voc", "--help"]).output
    names = [
        "--template" if f == "templates" else "--" + f.replace("_", "-")
        for cls in (Protocol, SuiteRequest)
        for f in _settings(cls)
    ]
    assert [n for n in names if n not in help_text] == []
    assert "Named protocol" in help_text and "tagalign-v1|tagalign-v3|sclip" in help_text


def _settings(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.metadata]


def test_the_api_checks_the_ranges_the_flags_declare():
    assert RANGES["clip_blend"] == Range(0, 1) and RANGES["batch_size"] == Range(1, 2**20)
    for name in PRESETS:  # every named protocol has its values
        assert resolve_protocol(name).name == name


def _classify(args: list[str]):
    return CliRunner().invoke(main, ["classify", *args])


def test_an_old_flag_name_still_works_with_one_warning(tmp_path):
    """`--templates FILE` reaches `--template-file` (its checks included) and says so once."""
    bad = tmp_path / "t.txt"
    bad.write_text("no braces here\n")
    for old, new in (("--templates", "--template-file"), ("--classes", "--class-map")):
        result = _classify([str(tmp_path / "nope"), "--clip-model", "x", old, str(bad)])
        warning = f"warning: {old} is now {new}; the old name will be removed"
        assert result.stderr.splitlines().count(warning) == 1
        assert result.exit_code == 2 and "Traceback" not in result.output
    help_text = _classify(["--help"]).output
    assert all(old not in help_text for old in ("--templates", "--classes", "--model "))
    assert CLASSIFY_RENAMED["--model"] == "--clip-model"


def test_the_old_and_new_names_reach_the_same_check(tmp_path):
    bad = tmp_path / "t.txt"
    bad.write_text("no braces here\n")
    root = tmp_path / "images" / "cat"
    root.mkdir(parents=True)
    lines = []
    for flag in ("--templates", "--template-file"):
        result = _classify([str(root.parent), "--clip-model", "x", flag, str(bad)])
        lines.append(result.stderr.splitlines()[-1])
    assert lines[0] == lines[1] and lines[0].startswith("error: ") and "{}" in lines[0]
