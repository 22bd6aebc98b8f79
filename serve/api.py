"""Model service: the LitServe LitAPIs that run the merged model (or base + LoRA adapter, unmerged).

One API, ``ModelAPI`` (``OpenAISpec`` at /v1/chat/completions with the fixes in serve/spec.py, token
streaming for a whole batch),
with LitServe's dynamic batching (``max_batch_size``, ``batch_timeout`` from params ``serve.*``).
The gateway sends /predict through it as well, so both endpoints share one model copy and one
batching queue.

It only generates. Validation, safety pre/post checks, the cache, auth and the audit log run in
front of the batching queue, in serve/gateway.py, so an emergency question is answered even when
the model is down and a cache hit never waits for a batch. The gateway sends it an already
cleaned question as one user message."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import litserve as ls
from fastapi import HTTPException

from stages.model.generate import Decoding

logger = logging.getLogger("serve.api")

WARMUP_QUESTION = "医院周末可以挂号吗？"
WARMUP_TOKENS = 4


@dataclass(frozen=True)
class ModelConfig:
    """Everything a worker needs to load and run the model (pickled into each worker process)."""
    path: str | None                 # None: model disabled (--no-model), safety-only mode
    adapter: str | None
    dtype: str                       # serve.dtype (auto: bf16 where the hardware has it natively)
    system: str
    max_new_tokens: int
    warmup: bool = True
    prefix_cache: bool = True        # reuse the system prompt's KV cache (stages/model/prefix_cache.py)
    decoding: Decoding = Decoding()  # params generation.* (the decoding evaluate scored)


class ModelAPI(ls.LitAPI):
    """The one model service: OpenAI chat completions (``OpenAISpec``) with token streaming, batched.

    /predict is served through it too (the gateway turns a /predict call into a non-streaming chat
    call), so both endpoints share one model copy and one batching queue. Each row's last chunk
    carries its token usage (prompt/completion tokens, summed into the OpenAI ``usage`` object), from
    which /predict reports ``new_tokens`` and ``truncated``."""

    def __init__(self, config: ModelConfig, **kwargs):
        from serve.spec import MedQAOpenAISpec
        from serve.workers import WorkerPids

        self.worker_pids = WorkerPids()
        kwargs.setdefault("spec", MedQAOpenAISpec(self.worker_pids))
        super().__init__(**kwargs)
        self.config = config
        self.model = None
        self.tokenizer = None
        self.prefix = None
        self.metrics = None

    def setup(self, device):
        if not logging.getLogger().handlers:     # spawned worker: nothing configured logging yet
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._load(device)
        self.worker_pids.mark_ready()

    def health(self) -> bool:
        """Runs in the API-server process: false from the moment an inference worker dies until its
        replacement is ready, so /health answers 503 while the model cannot answer."""
        return self.worker_pids.all_ready_alive()

    def _load(self, device):
        from serve.monitoring import WorkerMetrics

        self.metrics = WorkerMetrics.from_env(max_batch=self.max_batch_size)   # /metrics: batch sizes, tokens
        if self.config.path is None:
            logger.warning("model disabled (--no-model): only safety replies and cached answers are served")
            return
        from stages.model.modeling import load_tokenizer, set_threads
        from stages.model.quantize import load_serving_model

        set_threads(0)
        t0 = time.perf_counter()
        self.tokenizer = load_tokenizer(self.config.path)
        self.model, dtype = load_serving_model(self.config.path, self.config.dtype, str(device),
                                               adapter=self.config.adapter)
        self.model.generation_config.use_cache = True          # KV cache on for every generate call
        load_s = time.perf_counter() - t0
        if self.config.prefix_cache:
            from stages.model.prefix_cache import PromptPrefix

            self.prefix = PromptPrefix(self.model, self.tokenizer, self.config.system)
            logger.info("system-prompt KV cache: %d prompt tokens computed once, shared by every request",
                        len(self.prefix))
        warm_s = self._warmup() if self.config.warmup else 0.0
        logger.info("%s ready on %s: model %s%s (%s) loaded in %.1fs, warm-up (batch %d × %d tokens) %.1fs",
                    type(self).__name__, device, self.config.path,
                    f" + adapter {self.config.adapter}" if self.config.adapter else "",
                    dtype, load_s, self.max_batch_size, WARMUP_TOKENS, warm_s)

    def _require_model(self):
        if self.model is None:
            raise HTTPException(503, "the model is disabled on this server (--no-model)")

    def _cap(self, n) -> int:
        n = self.config.max_new_tokens if n is None else int(n)
        if not 1 <= n <= self.config.max_new_tokens:
            raise HTTPException(422, f"max_new_tokens must be between 1 and {self.config.max_new_tokens}")
        return n

    def _warmup(self) -> float:
        from serve.streaming import BatchStream

        t0 = time.perf_counter()
        for _ in BatchStream(self.model, self.tokenizer, [WARMUP_QUESTION] * self.max_batch_size,
                             self.config.system, [WARMUP_TOKENS] * self.max_batch_size, self.prefix,
                             self.config.decoding):
            pass
        return time.perf_counter() - t0

    def decode_request(self, request, context=None):
        users = [m for m in request.messages if m.role == "user" and isinstance(m.content, str)]
        if not users:
            raise HTTPException(422, "expected one user message with text content")
        n = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
        return users[-1].content, self._cap(n)

    def predict(self, x, context=None):
        from serve.streaming import BatchStream

        self._require_model()
        batched = self.max_batch_size > 1
        items = list(x) if batched else [x]
        stream = BatchStream(self.model, self.tokenizer, [q for q, _ in items], self.config.system,
                             [n for _, n in items], self.prefix, self.config.decoding)
        self.metrics.batch_started(len(items))
        for deltas in stream:
            yield [{"content": d} for d in deltas] if batched else {"content": deltas[0]}
        usage = [{"content": "", "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
                 for p, c in zip(stream.prompt_tokens, stream.new_tokens)]
        new = sum(stream.new_tokens)
        self.metrics.batch_done(stream.new_tokens, [n for _, n in items], stream.seconds)
        logger.info("batch of %d: %d prompt tokens (%d from the shared prefix cache), %d new tokens "
                    "(longest %d), %.2fs, %.1f new tokens/s", len(items), sum(stream.prompt_tokens),
                    stream.cached_tokens * len(items), new, max(stream.new_tokens), stream.seconds,
                    new / stream.seconds if stream.seconds else 0.0)
        yield usage if batched else usage[0]

    def encode_response(self, output, context=None):
        for step in output:
            if self.max_batch_size > 1:
                yield [dict(d, role="assistant") for d in step]
            else:
                yield dict(step, role="assistant")
