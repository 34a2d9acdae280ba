"""`bench/gpu_check.py --dry-run`: every step of the prepared GPU run, on the CPU at tiny sizes,
so the script cannot rot between the rare runs on a GPU machine (issue 23)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUMBER = (int, float)


@pytest.mark.slow  # seven fresh Python processes with torch (two under torchrun): 2-5 min here
def test_dry_run_ends_every_step_and_writes_every_key(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = json.loads((out / "gpu_check.json").read_text())
    steps = report["steps"]
    assert list(steps) == [
        "env",
        "train_throughput",
        "eval_throughput",
        "toy_torchrun",
        "data_path",
        "estimates",
    ], proc.stdout
    failed = {n: s.get("log_tail") for n, s in steps.items() if s["status"] != "ok"}
    assert not failed and proc.returncode == 0, failed
    assert report["dry_run"] is True

    env = steps["env"]["result"]
    assert env["torch"] and env["python"] and env["device_used"] == "cpu"
    assert env["matmul_tflops_measured"] > 0 and env["copy_tb_per_s_measured"] > 0
    assert set(env["packages"]) >= {"timm", "transformers", "open_clip_torch", "torchvision"}

    train = steps["train_throughput"]["result"]
    for key in ("images_per_s", "gflop_per_image", "achieved_tflops", "utilisation"):
        assert isinstance(train[key], NUMBER) and train[key] > 0, key
    assert train["losses"] == ["tag", "itc"] and "pretrained=None" in train["weights"]

    ev = steps["eval_throughput"]["result"]["fp32"]
    assert ev["images_per_s"] > 0 and len(ev["benchmark_minutes"]) == 10

    toy = steps["toy_torchrun"]["result"]
    assert toy["collective"] == {"backend": "gloo", "world": 1, "sum": 1.0}
    assert 0 <= toy["miou_cpu"] <= 100 and toy["within_tolerance"] is True
    assert toy["miou_abs_diff"] == abs(toy["miou_gpu"] - toy["miou_cpu"])

    data = steps["data_path"]["result"]
    for path in ("cpu", "gpu"):
        assert set(data["images_per_s"][path]) == {"0", "1"}
        assert all(r > 0 for r in data["images_per_s"][path].values())
        assert all(0 < r for r in data["ratio_to_ceiling"][path].values())
    assert data["ceiling_images_per_s"] == train["images_per_s"]

    est = steps["estimates"]["result"]
    assert est["train_hours_1gpu_gpu_bound"] * train["images_per_s"] * 3600 == pytest.approx(
        30_001 * 4_096
    )
    for key in (
        "train_hours_8gpu_ideal",
        "train_hours_1gpu_data_bound_cpu_decode",
        "train_hours_1gpu_data_bound_gpu_decode",
        "eval_all_ten_minutes_fp32",
        "parse_hours_cc12m",
    ):
        assert isinstance(est[key], NUMBER) and est[key] > 0, key
