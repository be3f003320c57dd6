"""Settings of the llm package, read from the environment and a `.env` file."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from llm.model_names import DEFAULT_VERSIONS, resolve_model_name
from llm.routing.budgets import parse_budgets

MODEL_NAMES = tuple(DEFAULT_VERSIONS)


class LLMSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    llm_model_version: str = "custom_model_built_0.0.0"  # the active model at first start
    model_dir: Path = Path("./models")  # checkpoints: $MODEL_DIR/custom, $MODEL_DIR/qlora
    banking77_dir: Path | None = None  # Banking77 CSVs; downloaded with a pinned checksum when unset
    benchmark_every_n: int = 50  # a background benchmark of all models every N requests; 0 = never
    benchmark_sample: int = 20  # test examples (stratified) in the periodic benchmark
    benchmark_budget_usd_per_day: float = 1.00  # paid calls of periodic benchmarks, summed over every replica
    model_budget_usd_per_day: str = "5.00"  # live calls of each paid model per UTC day: a number or {"gemini": 5}
    fallback_order: str = "custom,qlora,gemini"  # tried in this order after the active model
    model_timeout_s: float = 30.0  # per-call timeout; an adapter may ask for less
    breaker_failures: int = 3  # consecutive failures that open a model's circuit
    breaker_cooldown_s: float = 30.0  # how long an open circuit skips the model
    max_prompt_chars: int = 4000  # longer prompts are refused before any model sees them
    benchmark_log: Path = Path("benchmark_results.jsonl")  # one JSON line per benchmark run
    answer_style: str = "grounded"  # LLMs (gemini, qlora): grounded (their own words, checked) | knowledge_base

    # Gemini (cloud)
    gemini_api_key: str | None = None
    gemini_model: str = "gemini-2.0-flash"
    gemini_base_url: str | None = None  # a proxy, or a fake server in tests
    gemini_api_version: str | None = None  # e.g. "v1beta"; the SDK's default when unset
    gemini_timeout_s: float = 20.0
    gemini_retry_attempts: int = 4  # attempts in all, the first included; 429/408/5xx are retried
    gemini_retry_initial_delay_s: float = 1.0  # first backoff; doubles each retry (max 8 s, +0..0.5 s jitter)
    gemini_price_table: str | None = None  # JSON {"model-id": [usd_in_per_1M, usd_out_per_1M]} over llm/pricing.py

    # QLoRA (Llama 3.1-8B + adapter)
    qlora_base_model: str = "meta-llama/Llama-3.1-8B-Instruct"
    qlora_adapter_dir: Path | None = None  # default $MODEL_DIR/qlora
    qlora_backend: str = "vllm"  # vllm | vllm-server | transformers
    vllm_server_url: str = "http://127.0.0.1:8000/v1"
    vllm_api_key: str | None = None  # secret: the key `vllm serve --api-key` was started with (Bearer)

    # Encoder (a pretrained sentence encoder + intent head, on the CPU)
    encoder_base_model: str = "sentence-transformers/all-MiniLM-L6-v2"  # hub id or local directory (training)
    encoder_dir: Path | None = None  # the trained checkpoint; default $MODEL_DIR/encoder

    @field_validator("fallback_order")
    @classmethod
    def _known_models(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in MODEL_NAMES]
        if unknown or not names:
            raise ValueError(f"FALLBACK_ORDER={value!r}: allowed names are {', '.join(MODEL_NAMES)}")
        return ",".join(names)

    @field_validator("model_budget_usd_per_day")
    @classmethod
    def _budgets(cls, value: str) -> str:
        try:
            parse_budgets(value)
        except ValueError as exc:
            raise ValueError(f"MODEL_BUDGET_USD_PER_DAY: {exc}") from None
        return value

    @field_validator("llm_model_version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        try:
            resolve_model_name(value)
        except ValueError as exc:
            raise ValueError(f"LLM_MODEL_VERSION: {exc}") from None
        return value

    @field_validator("answer_style")
    @classmethod
    def _known_style(cls, value: str) -> str:
        if value not in ("grounded", "knowledge_base"):
            raise ValueError(f"ANSWER_STYLE={value!r}: allowed values are grounded, knowledge_base")
        return value

    @field_validator("qlora_backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        allowed = ("vllm", "vllm-server", "transformers")
        if value not in allowed:
            raise ValueError(f"QLORA_BACKEND={value!r}: allowed values are {', '.join(allowed)}")
        return value

    @property
    def fallback_names(self) -> list[str]:
        return self.fallback_order.split(",")

    @property
    def qlora_adapter_path(self) -> Path:
        return self.qlora_adapter_dir or self.model_dir / "qlora"

    @property
    def custom_checkpoint_dir(self) -> Path:
        return self.model_dir / "custom"

    @property
    def encoder_checkpoint_dir(self) -> Path:
        return self.encoder_dir or self.model_dir / "encoder"
