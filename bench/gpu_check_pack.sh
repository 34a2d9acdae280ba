#!/usr/bin/env bash
# Run HERE (PyPI reachable), before a GPU run: packs into .gpucheck/wheels (git-ignored; it travels
# to the GPU machine through `carry`) the workspace's four wheels and the pure-Python/manylinux
# wheels the GPU machine's image lacks (open_clip_torch, ftfy, wcwidth, sqlalchemy), at the
# versions uv.lock installed here. NOT torch, torchvision, timm, transformers: the GPU machine's
# own CUDA builds are used (gpu_check.sh installs into a venv over them).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.gpucheck/wheels
rm -rf "$dir" && mkdir -p "$dir"
python3 -m uv build --all-packages --wheel --out-dir "$dir" -q
version() { .venv/bin/python -c "import importlib.metadata as m; print(m.version('$1'))"; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dir" "open_clip_torch==$(version open_clip_torch)" "ftfy==$(version ftfy)" \
    "wcwidth==$(version wcwidth)" "sqlalchemy==$(version sqlalchemy)"
ls -1 "$dir"
size=$(du -sm "$dir" | cut -f1)
echo "packed: $dir, ${size} MiB (limit 60)"
[ "$size" -le 60 ] || { echo "error: $dir is ${size} MiB, over the 60 MiB a GPU run carries" >&2; exit 2; }
