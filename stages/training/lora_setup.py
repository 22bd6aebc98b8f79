"""peft LoRA configuration from params ``lora.*``: which modules and which decoder layers get
adapters (``lora.layers``: ``all`` | ``last:N`` | list of indices → peft ``layers_to_transform``)."""
from __future__ import annotations

from stages.common.config import LoraParams


def num_decoder_layers(model) -> int:
    cfg = model.config
    n = getattr(cfg, "num_hidden_layers", None) or getattr(getattr(cfg, "text_config", None), "num_hidden_layers", None)
    if not n:
        raise ValueError(f"{type(model).__name__}: config has no num_hidden_layers; cannot resolve lora.layers")
    return int(n)


def resolve_layers(spec, n_layers: int) -> list[int] | None:
    """Layer indices to adapt, or None for all layers."""
    if spec == "all":
        return None
    if isinstance(spec, str):                      # 'last:N' (validated by config.py)
        k = int(spec.split(":", 1)[1])
        if k >= n_layers:
            return None
        return list(range(n_layers - k, n_layers))
    bad = [i for i in spec if not 0 <= i < n_layers]
    if bad or not spec:
        raise ValueError(f"lora.layers: indices {bad or spec} out of range for a model with {n_layers} layers")
    return sorted(set(spec))


def lora_config(p: LoraParams, n_layers: int):
    from peft import LoraConfig, TaskType

    layers = resolve_layers(p.layers, n_layers)
    return LoraConfig(task_type=TaskType.CAUSAL_LM, r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout,
                      target_modules=list(p.target_modules), layers_to_transform=layers,
                      layers_pattern="layers" if layers is not None else None,
                      use_dora=p.use_dora, use_rslora=p.use_rslora, bias="none")


def apply_lora(model, p: LoraParams):
    """Wrap ``model`` with LoRA adapters; fails when no module matched ``lora.target_modules``."""
    from peft import get_peft_model

    n = num_decoder_layers(model)
    try:
        peft_model = get_peft_model(model, lora_config(p, n))
    except ValueError as err:
        raise ValueError(f"lora.target_modules={list(p.target_modules)} / lora.layers={p.layers!r}: {err}") from None
    trainable, total = peft_model.get_nb_trainable_parameters()
    if trainable == 0:
        raise ValueError("lora: no trainable parameters (check lora.target_modules and lora.layers)")
    return peft_model, trainable, total


def sort_adapter_config(adapter_dir, peft_config) -> None:
    """peft keeps ``target_modules`` (and other module-name fields) as Python sets and saves them as
    ``list(set)``, whose order changes with PYTHONHASHSEED from run to run. Rewrite the saved
    ``adapter_config.json`` with exactly those fields sorted (same json format as peft), so an
    unchanged retrain writes a byte-identical adapter directory."""
    import json
    from pathlib import Path

    path = Path(adapter_dir) / "adapter_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    for key, value in peft_config.to_dict().items():
        if isinstance(value, (set, frozenset)) and isinstance(cfg.get(key), list):
            cfg[key] = sorted(cfg[key], key=str)
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True), encoding="utf-8")
