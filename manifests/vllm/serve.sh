#!/usr/bin/env bash
# The model server: Llama 3.1-8B-Instruct with the Banking77 LoRA adapter, OpenAI-compatible on :8000.
# The bot reaches it with QLORA_BACKEND=vllm-server VLLM_SERVER_URL=http://HOST:8000/v1 (model name "banking").
#
#   BASE_MODEL    hub id or local path of the base            (default meta-llama/Llama-3.1-8B-Instruct)
#   ADAPTER_DIR   the directory `bankbot train qlora --out` wrote (default ./models/qlora)
#   MAX_LORA_RANK at least the adapter's r: 8, 16, 32, 64 ...   (default 16, train_qlora's default r)
#   QUANTIZATION  "bitsandbytes" serves the base in 4-bit NF4 like QLoRA training (half the memory, slower);
#                 empty (default) serves it in bfloat16 (~16 GiB of weights: a 24 GiB GPU is enough)
#   VLLM_API_KEY  required: the key every /v1 request must carry as "Authorization: Bearer KEY"; the bot sends
#                 its own VLLM_API_KEY. vLLM reads it from the environment as its --api-key; it is not put on the
#                 command line, which vLLM logs at start-up. ALLOW_NO_API_KEY=1 serves without one (a laptop).
set -euo pipefail

BASE_MODEL="${BASE_MODEL:-meta-llama/Llama-3.1-8B-Instruct}"
ADAPTER_DIR="${ADAPTER_DIR:-./models/qlora}"
MAX_LORA_RANK="${MAX_LORA_RANK:-16}"
PORT="${PORT:-8000}"
if [[ -z "${VLLM_API_KEY:-}" && "${ALLOW_NO_API_KEY:-}" != "1" ]]; then
  echo "serve.sh: set VLLM_API_KEY (e.g. \$(openssl rand -hex 32)), or ALLOW_NO_API_KEY=1 to serve without one" >&2
  exit 2
fi

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
