"""LoRA adapters: reading their config, per-module scaling, and **dynamic loading** — base model +
adapter kept unmerged, at an adjustable strength — for development in serve/ and evaluate.

    from stages.model.adapters import load_with_adapter, set_adapter_scale
    model = load_with_adapter("models/base", "models/lora", scale=0.5)   # PeftModel, unmerged
    set_adapter_scale(model, 1.0)                                        # change strength in place
    with model.disable_adapter(): ...                                    # plain base behaviour

The scaling arithmetic here mirrors peft's ``LoraLayer.set_scale`` so the streaming merge and
peft produce bit-identical deltas in fp32. This module imports peft/transformers only inside the
functions that need them (the streaming merge must stay light)."""
from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class AdapterError(ValueError):
    pass


def read_adapter_config(adapter_dir: str | Path) -> dict:
    adapter_dir = Path(adapter_dir)
    cfg_path = adapter_dir / ADAPTER_CONFIG
    if not adapter_dir.is_dir():
        raise AdapterError(f"adapter directory {adapter_dir} does not exist (run the train stage first)")
    if not cfg_path.exists():
        raise AdapterError(f"{adapter_dir}: no {ADAPTER_CONFIG} (not a peft adapter directory)")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if cfg.get("peft_type") != "LORA":
        raise AdapterError(f"{cfg_path}: peft_type is {cfg.get('peft_type')!r}; only LoRA adapters are supported")
    if not (adapter_dir / ADAPTER_WEIGHTS).exists():
        found = sorted(p.name for p in adapter_dir.iterdir())
        raise AdapterError(f"{adapter_dir}: no {ADAPTER_WEIGHTS} (found {found}); save adapters as safetensors")
    return cfg


def pattern_key(pattern_keys, module_name: str) -> str | None:
    """The rank_pattern/alpha_pattern key that applies to ``module_name`` (same regex rule as
    ``peft.utils.other.get_pattern_key``; re-stated to keep peft out of the streaming merge)."""
    for key in pattern_keys:
        if re.match(rf"(.*\.)?({key})$", module_name):
            return key
    return None


def module_rank_alpha(cfg: dict, module_name: str) -> tuple[int, float]:
    """(r, alpha) for one module, honouring ``rank_pattern`` and ``alpha_pattern``."""
    rank_pattern = cfg.get("rank_pattern") or {}
    alpha_pattern = cfg.get("alpha_pattern") or {}
    rk = pattern_key(rank_pattern.keys(), module_name)
    ak = pattern_key(alpha_pattern.keys(), module_name)
    r = rank_pattern[rk] if rk is not None else cfg["r"]
    alpha = alpha_pattern[ak] if ak is not None else cfg["lora_alpha"]
    return int(r), alpha


def lora_scaling(alpha: float, r: int, use_rslora: bool, scale: float = 1.0) -> float:
    """``scale · alpha/r`` (rsLoRA: ``scale · alpha/√r``), evaluated in peft's order."""
    if use_rslora:
        return scale * alpha / math.sqrt(r)
    return scale * alpha / r


def set_adapter_scale(model, scale: float) -> int:
    """Set every LoRA layer to ``scale ×`` its configured strength (0 = base, 1 = full adapter).
    Absolute, not cumulative: calling it twice with 0.5 leaves 0.5. Returns the layer count."""
    from peft.tuners.lora import LoraLayer

    if not 0.0 <= scale <= 1.0:
        raise ValueError(f"adapter scale must be in [0, 1], got {scale}")
    n = 0
    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name in list(module.scaling):
                module.set_scale(name, scale)
            n += 1
    if n == 0:
        raise AdapterError("model has no LoRA layers to scale (was it loaded with an adapter?)")
    return n


def load_with_adapter(base: str | Path, adapter: str | Path, scale: float = 1.0, dtype: str = "auto",
                      device: str | None = None):
    """Base model + LoRA adapter, **unmerged** (peft ``PeftModel``), at ``scale``.
    Strict: an adapter whose weights do not cover the modules its config targets (renamed or
    missing keys, which peft only warns about) raises instead of silently running half-adapted."""
    from stages.model.modeling import load_model

    read_adapter_config(adapter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(base, dtype=dtype, device=device, adapter=adapter)
    for w in caught:
        msg = str(w.message)
        if "missing adapter keys" in msg:
            raise AdapterError(f"{adapter}: adapter weights do not match its config/base model: {msg[:500]}")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    set_adapter_scale(model, scale)
    return model
