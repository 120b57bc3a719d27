#!/usr/bin/env bash
# End-to-end check of the CUDA path on a machine with an NVIDIA GPU.
#
#   scripts/gpu-check.sh [WHEEL_DIR]
#
# Installs the harness and a CUDA runtime (onnxruntime-gpu with its CUDA/cuDNN wheels and
# nvidia-ml-py) into fresh venvs, from WHEEL_DIR when given (offline: every wheel needed must
# be there) or from the package index, runs a small CUDA suite, and fails unless the CUDA
# cases really ran on CUDAExecutionProvider with device-resident (IO binding) figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=${1:-${WHEELS:-}}
WORK=${GPU_CHECK_DIR:-/tmp/harness-gpu-check}
PYTHON=${PYTHON:-python3}
mkdir -p "$WORK"
pip_args=(--disable-pip-version-check -q)
[ -n "$WHEELS" ] && pip_args+=(--no-index --find-links "$WHEELS")

echo "== GPU"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "== harness env"; "$PYTHON" -m venv "$WORK/harness"
"$WORK/harness/bin/pip" install "${pip_args[@]}" "$ROOT[gpu]"
echo "== CUDA runtime"; "$PYTHON" -m venv "$WORK/cuda"
"$WORK/cuda/bin/pip" install "${pip_args[@]}" "onnxruntime-gpu[cuda,cudnn]" numpy nvidia-ml-py
"$WORK/cuda/bin/python" -c "import onnxruntime as o; o.preload_dlls(); print(o.__version__, o.get_available_providers())"

cat > "$WORK/gpu-check.yaml" <<YAML
name: gpu-check
models:
  - {name: resnet50, source: "builtin:resnet50"}
  - name: encoder
    source: "builtin:encoder"
    dims: {sequence: 128}
    inputs: {input_ids: {range: [0, 30522]}, attention_mask: {value: 1}}
variants: [fp32, fp16]
targets:
  - cpu
  - {name: cuda, runtime: {python: $WORK/cuda/bin/python}}
  - {name: tensorrt, runtime: {python: $WORK/cuda/bin/python}}
matrix: {batch: [1, 8]}
measure: {warmup_s: 1, min_iterations: 100, min_s: 2, max_s: 20}
YAML
cd "$WORK"
status=0
"$WORK/harness/bin/harness" run gpu-check.yaml -o results --report reports/gpu-check.html || status=$?
"$WORK/harness/bin/python" - <<'PY'
import glob, json, sys
doc = json.load(open(sorted(glob.glob("results/*.json"))[-1]))
print("gpus:", doc["environment"].get("gpus"))
bad = 0
for c in doc["cases"]:
    line = f"{c['case_id']:40} {c['status']:12}"
    if c["status"] == "ok":
        line += f" p50 {c['latency_ms']['p50']:.3f} ms"
        resident = c.get("device_resident") or {}
        if "latency_ms" in resident:
            line += f"  device-resident p50 {resident['latency_ms']['p50']:.3f} ms"
        if c.get("gpu_memory_mb"):
            line += f"  gpu mem {c['gpu_memory_mb']}"
        line += f"  assigned {c['runtime']['providers_assigned'][0]}"
    else:
        line += f" {c.get('reason')}"
    print(line)
    if c["target"] == "cuda" and (c["status"] != "ok" or c["runtime"]["providers_assigned"][0] != "CUDAExecutionProvider"
                                  or "latency_ms" not in (c.get("device_resident") or {})):
        bad += 1
sys.exit(1 if bad else 0)
PY
echo "gpu-check: CUDA cases ok (harness exit $status); report in $WORK/reports/gpu-check.html"
