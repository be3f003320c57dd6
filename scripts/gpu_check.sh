#!/usr/bin/env bash
# GPU check of the QLoRA path (tiny Llama + LoRA adapter built locally; nothing downloaded):
# vLLM in-process (AsyncLLM + LoRARequest) and vLLM as an OpenAI-compatible server, with latency and tokens/s.
# Needs a CUDA GPU and vllm (pip install bankbot[vllm]). Usage: scripts/gpu_check.sh [--rounds N] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [[ -x .venv/bin/python ]] && .venv/bin/python -c "import vllm" 2>/dev/null; then
  PYTHON=.venv/bin/python
fi
exec timeout "${GPU_CHECK_TIMEOUT_S:-900}" "$PYTHON" scripts/gpu_check.py "$@"
