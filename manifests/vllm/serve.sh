#!/usr/bin/env bash
# The model server: Llama 3.1-8B-Instruct with the Banking77 LoRA adapter, OpenAI-compatible on :8000.
# The bot reaches it with QLORA_BACKEND=vllm-server VLLM_SERVER_URL=http://HOST:8000/v1 (model name "banking").
#
#   BASE_MODEL    hub id or local path of the base            (default meta-llama/Llama-3.1-8B-Instruct)
#   ADAPTER_DIR   the directory `bankbot train qlora --out` wrote (default ./models/qlora)
#   MAX_LORA_RANK at least the adapter's r: 8, 16, 32, 64 ...   (default 16, train_qlora's default r)
#   QUANTIZATION  "bitsandbytes" serves the base in 4-bit NF4 like QLoRA training (half the memory, slower);
#                 empty (default) serves it in bfloat16 (~16 GiB of weights: a 24 GiB GPU is enough)
set -euo pipefail

BASE_MODEL="${BASE_MODEL:-meta-llama/Llama-3.1-8B-Instruct}"
ADAPTER_DIR="${ADAPTER_DIR:-./models/qlora}"
MAX_LORA_RANK="${MAX_LORA_RANK:-16}"
PORT="${PORT:-8000}"

args=(
  "$BASE_MODEL"
  --host 0.0.0.0 --port "$PORT"
  --enable-lora
  --lora-modules "banking=$ADAPTER_DIR"
  --max-lora-rank "$MAX_LORA_RANK"
  --max-loras 1
  --max-model-len "${MAX_MODEL_LEN:-2048}"
  --gpu-memory-utilization "${GPU_MEMORY_UTILIZATION:-0.90}"
)
if [[ -n "${QUANTIZATION:-}" ]]; then
  args+=(--quantization "$QUANTIZATION")
fi
exec vllm serve "${args[@]}" "$@"
