"""Base model plus LoRA adapter through transformers and peft, on CPU. Inference runs in a worker thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from llm.errors import ModelUnavailableError
from llm.qlora.backend import RawGeneration, check_adapter_dir, label_token_count, require
from llm.qlora.prompting import LABEL_STOP, MAX_ANSWER_TOKENS, MAX_LABEL_TOKENS, has_chat_template, render_prompt


class TransformersBackend:
    name = "transformers"

    def __init__(self, base: str, adapter_dir: Path, *, max_new_tokens: int = MAX_LABEL_TOKENS):
        self.base = base
        self.adapter_dir = Path(adapter_dir)
        self.max_new_tokens = max_new_tokens
        self.model: Any = None
        self.tokenizer: Any = None
        self._lock = threading.Lock()  # one forward pass at a time: threads would only fight for the cores
        self._turn = asyncio.Lock()  # callers queue on the loop, so waiting never holds a pool thread

    async def load(self) -> None:
        await asyncio.to_thread(self._load_sync)

    def _load_sync(self) -> None:
        torch = require("torch")
        transformers = require("transformers")
        peft = require("peft")
        check_adapter_dir(self.adapter_dir)
        tokenizer_source = self.adapter_dir if (self.adapter_dir / "tokenizer_config.json").is_file() else self.base
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_source)
            base_model = transformers.AutoModelForCausalLM.from_pretrained(self.base, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"cannot load QLoRA base model {self.base!r}: {exc}") from exc
        try:
            model = peft.PeftModel.from_pretrained(base_model, str(self.adapter_dir))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelUnavailableError(f"cannot apply LoRA adapter {self.adapter_dir} to {self.base}: {exc}") from exc
        self.model = model.eval()

    async def generate(self, question: str) -> RawGeneration:
        if self.model is None:
            raise ModelUnavailableError("the transformers QLoRA backend is not loaded")
        async with self._turn:  # one generation at a time, waiting here rather than in a pool thread
            return await asyncio.to_thread(self._generate_sync, question)

    def _generate_sync(self, question: str) -> RawGeneration:
        torch = require("torch")
        tokenizer = self.tokenizer
        prompt = render_prompt(tokenizer, question)
        encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=not has_chat_template(tokenizer))
        prompt_len = encoded["input_ids"].shape[1]
        with self._lock, torch.no_grad():
            out = self.model.generate(
                **encoded,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                stop_strings=[LABEL_STOP],
                tokenizer=tokenizer,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            )
            # log p(token) of each generated token under the (greedy) decoding distribution
            scores = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)[0]
        generated = out.sequences[0, prompt_len:].tolist()
        text = tokenizer.decode(generated, skip_special_tokens=True).split(LABEL_STOP)[0]
        return RawGeneration(
            text=text,
            token_logprobs=[float(s) for s in scores.tolist()],
            prompt_tokens=prompt_len,
            completion_tokens=len(generated),
            extra={"backend": self.name},
        )

    async def stream(self, question: str) -> AsyncIterator[str | RawGeneration]:
        """The label and the answer as they are generated (transformers' TextIteratorStreamer: the generation runs
        in a worker thread and hands each decoded piece over), then the whole generation."""
        if self.model is None:
            raise ModelUnavailableError("the transformers QLoRA backend is not loaded")
        transformers = require("transformers")
        async with self._turn:
            streamer = transformers.TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            job = asyncio.ensure_future(asyncio.to_thread(self._generate_streamed, question, streamer))
            pieces = iter(streamer)
            try:
                while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                    if piece:
                        yield piece
                raw = await job
            finally:
                if not job.done():
                    await asyncio.gather(job, return_exceptions=True)  # the thread ends the streamer either way
        yield raw

    def _generate_streamed(self, question: str, streamer: Any) -> RawGeneration:
        torch = require("torch")
        tokenizer = self.tokenizer
        try:
            prompt = render_prompt(tokenizer, question)
            encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=not has_chat_template(tokenizer))
            prompt_len = encoded["input_ids"].shape[1]
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            with self._lock, torch.no_grad():
                out = self.model.generate(
                    **encoded, max_new_tokens=MAX_ANSWER_TOKENS, do_sample=False, output_scores=True,
                    return_dict_in_generate=True, streamer=streamer, pad_token_id=pad,
                )
                scores = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)[0]
        except BaseException:
            streamer.end()  # the consumer waiting on the streamer must not wait forever
            raise
        generated = out.sequences[0, prompt_len:].tolist()
        texts = [tokenizer.decode([t], skip_special_tokens=True) for t in generated]
        return RawGeneration(
            text=tokenizer.decode(generated, skip_special_tokens=True),
            token_logprobs=[float(s) for s in scores.tolist()],
            prompt_tokens=prompt_len, completion_tokens=len(generated),
            extra={"backend": self.name, "streamed": True}, label_tokens=label_token_count(texts),
        )

    async def aclose(self) -> None:
        self.model = None
