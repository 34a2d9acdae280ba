#!/usr/bin/env bash
# Run ON THE GPU MACHINE (no network), from the repo root, with .gpucheck carried there:
#   bash bench/gpu_check.sh            -> $OUT/gpu_check.json (one entry per step, as each ends)
# Installs the wheels packed by bench/gpu_check_pack.sh into a venv layered over the machine's
# own Python (its CUDA torch, timm, transformers), then runs bench/gpu_check.py.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check_out}"
mkdir -p "$out"
venv=/tmp/gpucheck-venv
# --system-site-packages alone would see the *base* interpreter's packages when python3 is itself
# a venv (as on the GPU image): a .pth file adds python3's own site-packages, after the venv's.
python3 -m venv --without-pip --system-site-packages "$venv" || exit 3
site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
python3 -c "import site; print('\n'.join(site.getsitepackages()))" > "$site/gpucheck-parent.pth"
python3 -m pip --python "$venv/bin/python" install -q --no-index --no-deps --no-cache-dir \
    .gpucheck/wheels/*.whl > "$out/install.log" 2>&1 || { cat "$out/install.log"; exit 3; }
echo "installed: $(ls .gpucheck/wheels | wc -l) wheels ($(du -sm .gpucheck/wheels | cut -f1) MiB)"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
exec "$venv/bin/python" bench/gpu_check.py --out "$out" "$@"
