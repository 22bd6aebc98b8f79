"""Serving settings: params.yaml ``serve`` + ``prompt.system``, with CLI overrides."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from serve.api import ModelConfig
from serve.auth import key_from_env
from serve.limits import Limits
from serve.monitoring import MonitorSettings
from stages.common.config import Params
from stages.model.generate import Decoding


@dataclass(frozen=True)
class GatewaySettings:
    """What the API-server process needs (passed to the gateway middleware)."""
    limits: Limits
    cache_size: int
    cache_ttl_s: float
    audit_log: str | None
    api_key: str | None
    model_enabled: bool
    model_path: str | None = None       # its tokenizer counts prompt tokens (serve.max_prompt_tokens)
    system: str = ""
    max_in_flight: int = 64
    generation_timeout_s: float = 300.0
    triage_model: str | None = "models/triage"   # triage stage output; None = rules only (--rules-only-triage)
    feedback_db: str | None = None      # humanloop: answers recorded for /feedback (serve/feedback.py)
    monitor: MonitorSettings = MonitorSettings()


@dataclass(frozen=True)
class ServeSettings:
    model: ModelConfig
    max_batch_size: int
    batch_timeout: float
    max_question_chars: int
    cache_size: int
    cache_ttl_s: float
    request_timeout_s: float
    audit_log: str | None
    api_key_env: str
    api_key: str | None
    max_in_flight: int = 64
    generation_timeout_s: float = 300.0
    body_timeout_s: float = 10.0
    max_prompt_tokens: int = 1536
    enable_shutdown_api: bool = False
    triage_model: str | None = "models/triage"   # None = rules-only triage (explicit flag only)
    feedback_db: str | None = None      # serve.feedback_db; None = no feedback/review store
    reviewer_key_env: str = "MEDQA_REVIEWER_KEY"
    reviewer_key: str | None = None
    metrics_auth: bool = True
    monitor_window: int = 200

    @classmethod
    def from_params(cls, params: Params, model: str | None, adapter: str | None = None, **overrides) -> "ServeSettings":
        """``overrides``: any field name here, or ``max_new_tokens``/``warmup``/``prefix_cache`` for the
        model; None = keep."""
        s = params.serve
        overrides = {k: v for k, v in overrides.items() if v is not None}
        model_cfg = ModelConfig(path=str(model) if model is not None else None,
                                adapter=str(adapter) if adapter is not None else None,
                                dtype=overrides.pop("dtype", s.dtype), system=params.prompt.system,
                                max_new_tokens=overrides.pop("max_new_tokens",
                                                             s.max_new_tokens or params.generation.max_new_tokens),
                                decoding=Decoding.from_params(params.generation),
                                warmup=overrides.pop("warmup", True),
                                prefix_cache=overrides.pop("prefix_cache", True))
        api_key_env = overrides.pop("api_key_env", s.api_key_env)
        settings = cls(model=model_cfg, max_batch_size=s.max_batch_size, batch_timeout=s.batch_timeout,
                       max_question_chars=s.max_question_chars, cache_size=s.cache_size, cache_ttl_s=s.cache_ttl_s,
                       request_timeout_s=s.request_timeout_s, audit_log=s.audit_log or None,
                       api_key_env=api_key_env, api_key=key_from_env(api_key_env),
                       max_in_flight=s.max_in_flight, generation_timeout_s=s.generation_timeout_s,
                       body_timeout_s=s.body_timeout_s, max_prompt_tokens=s.max_prompt_tokens,
                       triage_model=s.triage_model,
                       feedback_db=s.feedback_db or None, reviewer_key_env=s.reviewer_key_env,
                       reviewer_key=key_from_env(s.reviewer_key_env),
                       metrics_auth=s.metrics_auth, monitor_window=s.monitor_window)

        return replace(settings, **overrides)

    def gateway(self) -> GatewaySettings:
        return GatewaySettings(
            limits=Limits(max_question_chars=self.max_question_chars, max_new_tokens=self.model.max_new_tokens,
                          max_prompt_tokens=self.max_prompt_tokens, body_timeout_s=self.body_timeout_s),
            cache_size=self.cache_size, cache_ttl_s=self.cache_ttl_s, audit_log=self.audit_log,
            api_key=self.api_key, model_enabled=self.model.path is not None, model_path=self.model.path,
            system=self.model.system, max_in_flight=self.max_in_flight,
            generation_timeout_s=self.generation_timeout_s, triage_model=self.triage_model,
            feedback_db=self.feedback_db,
            monitor=MonitorSettings(auth=self.metrics_auth, window=self.monitor_window))

    def describe(self) -> dict:
        """JSON-safe summary for /info (never the key itself)."""
        from stages.model.quantize import resolve_serving_precision

        return {"model": self.model.path, "adapter": self.model.adapter, "dtype": self.model.dtype,
                "dtype_resolved": resolve_serving_precision(self.model.dtype),
                "model_enabled": self.model.path is not None, "max_new_tokens": self.model.max_new_tokens,
                "max_batch_size": self.max_batch_size, "batch_timeout": self.batch_timeout,
                "max_question_chars": self.max_question_chars, "cache_size": self.cache_size,
                "cache_ttl_s": self.cache_ttl_s, "request_timeout_s": self.request_timeout_s,
                "max_in_flight": self.max_in_flight, "generation_timeout_s": self.generation_timeout_s,
                "body_timeout_s": self.body_timeout_s, "max_prompt_tokens": self.max_prompt_tokens,
                "auth": self.api_key is not None, "api_key_env": self.api_key_env,
                "decoding": "greedy", "generation": self.model.decoding.describe(), "kv_cache": True,
                "system_prompt_kv_cache": self.model.prefix_cache,
                "triage": self.triage_model or "rules_only"}


def check_model_dir(path: str | Path, what: str = "model") -> None:
    p = Path(path)
    marker = "adapter_config.json" if what == "adapter" else "config.json"
    if not (p / marker).is_file():
        hint = (" — run `dvc repro merge` to build it, or use --model models/base (optionally with --adapter "
                "models/lora) for development") if what == "model" else " — run `dvc repro train` to build it"
        raise SystemExit(f"serve: {what} directory {p} has no {marker}{hint}")


def check_triage_dir(path: str | Path) -> None:
    """The served pre-check needs the triage stage's model: refuse to start without it."""
    from stages.safety.triage_model import META_FILE, MODEL_FILE

    p = Path(path)
    if not (p / MODEL_FILE).is_file() or not (p / META_FILE).is_file():
        raise SystemExit(f"serve: triage model {p} not found (no {MODEL_FILE}/{META_FILE}) — run `dvc repro triage` "
                         "(python -m stages.triage) to build it, or start with --rules-only-triage to serve the "
                         "keyword rules alone (much lower emergency recall)")
