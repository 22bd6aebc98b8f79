"""Model service: the LitServe LitAPIs that run the merged model (or base + LoRA adapter, unmerged).

Two APIs over one model spec, each with LitServe's dynamic batching (``max_batch_size``,
``batch_timeout`` from params ``serve.*``):
- ``ChatAPI`` — ``OpenAISpec`` at /v1/chat/completions, token streaming for a whole batch;
- ``PredictAPI`` — plain POST /predict, batched greedy generation via stages/generate.py.

They only generate. Validation, safety pre/post checks, the cache, auth and the audit log run in
front of the batching queue, in serve/gateway.py, so an emergency question is answered even when
the model is down and a cache hit never waits for a batch. The gateway sends these APIs an already
cleaned question: ``{"question": text, "max_new_tokens": n}`` / one user message."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import litserve as ls
from fastapi import HTTPException

logger = logging.getLogger("serve.api")

WARMUP_QUESTION = "医院周末可以挂号吗？"
WARMUP_TOKENS = 4


@dataclass(frozen=True)
class ModelConfig:
    """Everything a worker needs to load and run the model (pickled into each worker process)."""
    path: str | None                 # None: model disabled (--no-model), safety-only mode
    adapter: str | None
    dtype: str
    system: str
    max_new_tokens: int
    warmup: bool = True


class _ModelService(ls.LitAPI):
    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.model = None
        self.tokenizer = None

    def setup(self, device):
        if not logging.getLogger().handlers:     # spawned worker: nothing configured logging yet
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if self.config.path is None:
            logger.warning("model disabled (--no-model): only safety replies and cached answers are served")
            return
        from stages.modeling import load_model, load_tokenizer, set_threads

        set_threads(0)
        t0 = time.perf_counter()
        self.tokenizer = load_tokenizer(self.config.path)
        self.model = load_model(self.config.path, self.config.dtype, str(device), adapter=self.config.adapter)
        self.model.generation_config.use_cache = True          # KV cache on for every generate call
        load_s = time.perf_counter() - t0
        warm_s = self._warmup() if self.config.warmup else 0.0
        logger.info("%s ready on %s: model %s%s loaded in %.1fs, warm-up (batch %d × %d tokens) %.1fs",
                    type(self).__name__, device, self.config.path,
                    f" + adapter {self.config.adapter}" if self.config.adapter else "",
                    load_s, self.max_batch_size, WARMUP_TOKENS, warm_s)

    def _warmup(self) -> float:
        raise NotImplementedError

    def _require_model(self):
        if self.model is None:
            raise HTTPException(503, "the model is disabled on this server (--no-model)")

    def _cap(self, n) -> int:
        n = self.config.max_new_tokens if n is None else int(n)
        if not 1 <= n <= self.config.max_new_tokens:
            raise HTTPException(422, f"max_new_tokens must be between 1 and {self.config.max_new_tokens}")
        return n


class PredictAPI(_ModelService):
    """POST /predict → ``{"answer", "new_tokens", "hit_cap"}`` (the gateway adds safety/cache fields)."""

    def __init__(self, config: ModelConfig, **kwargs):
        kwargs.setdefault("api_path", "/predict")
        super().__init__(config, **kwargs)

    def _warmup(self) -> float:
        from stages.generate import generate_answers

        t0 = time.perf_counter()
        generate_answers(self.model, self.tokenizer, [WARMUP_QUESTION] * self.max_batch_size, self.config.system,
                         max_new_tokens=WARMUP_TOKENS, batch_size=self.max_batch_size, progress=False)
        return time.perf_counter() - t0

    def decode_request(self, request):
        if not isinstance(request, dict) or not isinstance(request.get("question"), str):
            raise HTTPException(422, 'expected {"question": "..."}')
        return request["question"], self._cap(request.get("max_new_tokens"))

    def _generate(self, items: list[tuple[str, int]]) -> list[dict]:
        from stages.generate import generate_answers

        self._require_model()
        out: list[dict | None] = [None] * len(items)
        for n in sorted({n for _, n in items}):           # one generate call per token budget
            idx = [i for i, (_, m) in enumerate(items) if m == n]
            res = generate_answers(self.model, self.tokenizer, [items[i][0] for i in idx], self.config.system,
                                   max_new_tokens=n, batch_size=len(idx), progress=False)
            for i, r in zip(idx, res):
                out[i] = r
        return out  # type: ignore[return-value]

    def predict(self, x):
        if self.max_batch_size > 1:
            return self._generate(list(x))
        return self._generate([x])[0]

    def encode_response(self, output):
        return {"answer": output["answer"], "new_tokens": output["new_tokens"], "hit_cap": output["hit_cap"]}


class ChatAPI(_ModelService):
    """OpenAI chat completions with streaming; batched requests stream together."""

    def __init__(self, config: ModelConfig, **kwargs):
        from litserve.specs.openai import OpenAISpec

        kwargs.setdefault("spec", OpenAISpec())
        super().__init__(config, **kwargs)

    def _warmup(self) -> float:
        from serve.streaming import stream_answers

        t0 = time.perf_counter()
        for _ in stream_answers(self.model, self.tokenizer, [WARMUP_QUESTION] * self.max_batch_size,
                                self.config.system, [WARMUP_TOKENS] * self.max_batch_size):
            pass
        return time.perf_counter() - t0

    def decode_request(self, request, context=None):
        users = [m for m in request.messages if m.role == "user" and isinstance(m.content, str)]
        if not users:
            raise HTTPException(422, "expected one user message with text content")
        n = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
        return users[-1].content, self._cap(n)

    def predict(self, x, context=None):
        from serve.streaming import stream_answers

        self._require_model()
        items = list(x) if self.max_batch_size > 1 else [x]
        for deltas in stream_answers(self.model, self.tokenizer, [q for q, _ in items], self.config.system,
                                     [n for _, n in items]):
            yield deltas if self.max_batch_size > 1 else deltas[0]

    def encode_response(self, output, context=None):
        for step in output:
            if self.max_batch_size > 1:
                yield [{"role": "assistant", "content": d} for d in step]
            else:
                yield {"role": "assistant", "content": step}
