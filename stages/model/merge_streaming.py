"""Streaming LoRA merge: base safetensors shards → merged shards, one tensor at a time.

For each targeted weight ``W`` (computed in fp32, cast back to the output dtype):

    W' = W + scale · s · (B @ A)            s = alpha/r, or alpha/√r with rsLoRA
    (transposed for fan_in_fan_out layers — transformers ``Conv1D`` — and for embeddings)

with r/alpha per module from ``rank_pattern``/``alpha_pattern``, exactly as peft computes it.
Tensors the adapter stores whole (``modules_to_save``, saved embedding layers) replace the base
tensor, as they do when peft loads the adapter; ``scale`` does not apply to them.
Untouched tensors are copied byte for byte. Adapters this code cannot merge exactly (DoRA,
base-modifying initialisations, …) are refused with a message, never approximated.

Memory: one tensor plus its delta (the module classes come from a meta-device instance of the
architecture, which holds no weights)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from stages.model.adapters import ADAPTER_WEIGHTS, lora_scaling, module_rank_alpha, read_adapter_config
from stages.model.safetensors_stream import (FLOAT_CODES, INDEX_NAME, ST_TO_TORCH, TORCH_TO_ST, ShardHeader,
                                       StreamingShardWriter, check_index_matches, load_tensor, model_shards,
                                       read_header)

log = logging.getLogger("stages.model.merge_streaming")

PREFIX = "base_model.model."
LORA_PARTS = {".lora_A.weight": "A", ".lora_B.weight": "B", ".lora_B.bias": "B_bias",
              ".lora_embedding_A": "A", ".lora_embedding_B": "B"}
SAFE_INITS = (True, False, "gaussian", "eva")


class StreamingMergeError(ValueError):
    pass


def refuse_unsupported(cfg: dict) -> None:
    """Raise for adapter features whose merge is not ``W + s·B@A`` on the original base."""
    if cfg.get("use_dora"):
        raise StreamingMergeError(
            "DoRA adapter (use_dora: true): its merged weight is re-normalised column-wise by a learned "
            "magnitude vector, which the streaming merge does not implement. Use merge.method: peft.")
    init = cfg.get("init_lora_weights", True)
    if init not in SAFE_INITS:
        raise StreamingMergeError(
            f"adapter was initialised with init_lora_weights={init!r}, which changes the base weights; merging it "
            "onto the original base is not exact. Convert it to a plain LoRA first (peft "
            "save_pretrained(path_initial_model_for_weight_conversion=...)) or use merge.method: peft.")
    features = {
        "use_qalora": "QA-LoRA", "alora_invocation_tokens": "activated LoRA (aLoRA)",
        "layer_replication": "layer replication", "trainable_token_indices": "trainable tokens",
        "target_parameters": "LoRA on nn.Parameter targets", "use_bdlora": "BD-LoRA",
        "arrow_config": "Arrow routing", "kasa_config": "KaSA", "monteclora_config": "MonteCLoRA",
        "velora_config": "VeLoRA", "megatron_config": "Megatron layers", "ensure_weight_tying": "tied adapters",
    }
    for key, what in features.items():
        if cfg.get(key):
            raise StreamingMergeError(f"adapter uses {what} ({key}); the streaming merge cannot merge it exactly. "
                                      "Use merge.method: peft.")


@dataclass
class ModulePlan:
    module: str
    kind: str                   # linear | conv1d | embedding
    parts: dict[str, str]       # A/B/B_bias -> adapter key
    r: int = 0
    alpha: float = 0.0
    scaling: float = 0.0


@dataclass
class MergePlan:
    weights: dict[str, ModulePlan] = field(default_factory=dict)      # base weight name -> plan
    biases: dict[str, ModulePlan] = field(default_factory=dict)       # base bias name -> plan (lora_bias)
    replace: dict[str, str] = field(default_factory=dict)             # base tensor name -> adapter key


def module_kinds(base_dir: Path, modules: list[str]) -> dict[str, str]:
    """Layer class of each module, from the architecture instantiated on the meta device (no weights).
    The layer class decides the delta's orientation exactly as in peft's dispatcher."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    config = AutoConfig.from_pretrained(str(base_dir))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    kinds = {}
    for m in modules:
        try:
            layer = model.get_submodule(m)
        except AttributeError:
            raise StreamingMergeError(f"adapter targets {m!r}, which the base architecture does not have "
                                      "(adapter trained on another model?)") from None
        if isinstance(layer, torch.nn.Embedding):
            kinds[m] = "embedding"
        elif isinstance(layer, torch.nn.Linear):
            kinds[m] = "linear"
        elif isinstance(layer, Conv1D):
            kinds[m] = "conv1d"
        else:
            raise StreamingMergeError(f"LoRA on {type(layer).__name__} ({m}) is not supported by the streaming "
                                      "merge. Use merge.method: peft.")
    del model
    return kinds


def plan_merge(cfg: dict, adapter: ShardHeader, base: dict, base_dir: Path, scale: float) -> MergePlan:
    """Map every adapter tensor onto base tensors and check ranks and shapes before any writing.
    ``base``: base tensor name -> TensorInfo (all shards)."""
    plan = MergePlan()
    modules: dict[str, dict[str, str]] = {}
    for key in adapter.tensors:
        if not key.startswith(PREFIX):
            raise StreamingMergeError(f"adapter tensor {key!r} lacks the peft prefix {PREFIX!r}")
        rest = key[len(PREFIX):]
        part = next((p for p in LORA_PARTS if rest.endswith(p)), None)
        if part is not None:
            modules.setdefault(rest[:-len(part)], {})[LORA_PARTS[part]] = key
        elif ".base_layer." in rest:
            plan.replace[rest.replace(".base_layer.", ".")] = key
        elif any(c.startswith("lora_") for c in rest.split(".")) or ".token_adapter." in rest:
            raise StreamingMergeError(f"adapter tensor {key!r} is not plain LoRA; the streaming merge cannot apply it")
        else:
            plan.replace[rest] = key                     # modules_to_save: a whole replacement tensor
    for name, key in plan.replace.items():
        if name not in base:
            raise StreamingMergeError(f"adapter stores {key!r} but the base has no tensor {name!r}")
        if tuple(adapter.tensors[key].shape) != base[name].shape:
            raise StreamingMergeError(f"adapter tensor {key!r} has shape {list(adapter.tensors[key].shape)}, "
                                      f"base {name!r} has {list(base[name].shape)} (resized vocabulary?)")
    kinds = module_kinds(base_dir, sorted(modules)) if modules else {}
    use_rslora = bool(cfg.get("use_rslora"))
    for m, parts in modules.items():
        if "A" not in parts or "B" not in parts:
            raise StreamingMergeError(f"adapter module {m!r} has {sorted(parts)} but needs both lora_A and lora_B")
        r, alpha = module_rank_alpha(cfg, m)
        a_shape, b_shape = adapter.tensors[parts["A"]].shape, adapter.tensors[parts["B"]].shape
        if len(a_shape) != 2 or len(b_shape) != 2:
            raise StreamingMergeError(f"{m}: LoRA factors are not matrices ({list(a_shape)}, {list(b_shape)})")
        if a_shape[0] != r or b_shape[1] != r:
            raise StreamingMergeError(f"{m}: adapter_config gives r={r} but lora_A is {list(a_shape)} and "
                                      f"lora_B is {list(b_shape)} (rank_pattern missing or config from another run?)")
        kind = kinds[m]
        delta = (b_shape[0], a_shape[1]) if kind == "linear" else (a_shape[1], b_shape[0])
        wname = f"{m}.weight"
        if wname not in base:
            raise StreamingMergeError(f"adapter targets {m!r} but the base checkpoint has no {wname!r} "
                                      "(tied to another tensor?). Use merge.method: peft.")
        if base[wname].shape != delta:
            raise StreamingMergeError(f"{m}: B@A gives {list(delta)} but base {wname} is {list(base[wname].shape)}")
        if base[wname].dtype not in FLOAT_CODES:
            raise StreamingMergeError(f"{wname} is {base[wname].dtype}; cannot merge into a non-float (quantised) weight")
        mp = ModulePlan(m, kind, parts, r, alpha, lora_scaling(alpha, r, use_rslora, scale))
        plan.weights[wname] = mp
        if "B_bias" in parts:
            bname = f"{m}.bias"
            if bname not in base:
                raise StreamingMergeError(f"{m}: adapter has lora_B.bias (lora_bias) but the base layer has no bias")
            plan.biases[bname] = mp
    return plan


def lora_delta(a: torch.Tensor, b: torch.Tensor, kind: str, scaling: float) -> torch.Tensor:
    """``scaling · B@A`` in fp32, oriented like the base weight (same op order as peft)."""
    d = b.to(torch.float32) @ a.to(torch.float32)
    if kind != "linear":
        d = d.T
    return d * scaling


def _merged_tensor(name: str, header: ShardHeader, adapter: ShardHeader, plan: MergePlan) -> torch.Tensor:
    base_dtype = ST_TO_TORCH[header.tensors[name].dtype]
    if name in plan.replace:
        w = load_tensor(adapter, plan.replace[name]).to(base_dtype)
    else:
        w = load_tensor(header, name)
    mp = plan.weights.get(name)
    if mp is not None:
        delta = lora_delta(load_tensor(adapter, mp.parts["A"]), load_tensor(adapter, mp.parts["B"]), mp.kind,
                           mp.scaling)
        w = w.to(torch.float32) + delta
        del delta
    mp = plan.biases.get(name)
    if mp is not None:
        w = w.to(torch.float32) + load_tensor(adapter, mp.parts["B_bias"]).to(torch.float32) * mp.scaling
    if (name in plan.weights or name in plan.biases) and not bool(torch.isfinite(w).all()):
        raise StreamingMergeError(f"merged {name} has NaN/inf values: the adapter is corrupt or diverged")
    return w


def merge_streaming(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path, scale: float = 1.0,
                    out_dtype: torch.dtype | None = None, progress: bool = True) -> dict:
    """Write merged weight shards (+ index) into ``out_dir``, mirroring the base shard layout.
    ``out_dtype`` None keeps each tensor's base dtype. Returns counts for the metrics."""
    from tqdm import tqdm

    base_dir, adapter_dir, out_dir = Path(base_dir), Path(adapter_dir), Path(out_dir)
    if not 0.0 <= scale <= 1.0:
        raise StreamingMergeError(f"scale must be in [0, 1], got {scale}")
    cfg = read_adapter_config(adapter_dir)
    refuse_unsupported(cfg)
    files, index = model_shards(base_dir)
    headers = {f: read_header(base_dir / f) for f in files}
    check_index_matches(base_dir, files, index, headers)
    base = {n: info for h in headers.values() for n, info in h.tensors.items()}
    adapter = read_header(adapter_dir / ADAPTER_WEIGHTS)
    plan = plan_merge(cfg, adapter, base, base_dir, scale)
    out_code = TORCH_TO_ST.get(out_dtype) if out_dtype is not None else None
    if out_dtype is not None and out_code not in FLOAT_CODES:
        raise StreamingMergeError(f"output dtype {out_dtype} is not a float dtype")
    log.info("streaming merge: %d shard(s), %d tensors, %d LoRA modules, %d replaced tensors, scale %.3g",
             len(files), len(base), len(plan.weights), len(plan.replace), scale)

    total = 0
    bar = tqdm(total=len(base), desc="streaming merge", unit="tensor", disable=not progress)
    for fname in files:
        header = headers[fname]
        names = sorted(header.tensors, key=lambda n: header.tensors[n].begin)
        code = {n: (out_code if out_code and header.tensors[n].dtype in FLOAT_CODES else header.tensors[n].dtype)
                for n in names}
        specs = [(n, code[n], header.tensors[n].shape) for n in names]
        with StreamingShardWriter(out_dir / fname, specs, {**header.metadata, "format": "pt"}) as writer:
            for n in names:
                touched = n in plan.weights or n in plan.biases or n in plan.replace
                if touched or code[n] != header.tensors[n].dtype:
                    t = _merged_tensor(n, header, adapter, plan) if touched else load_tensor(header, n)
                    writer.write_tensor(n, t.to(ST_TO_TORCH[code[n]]))
                    del t
                else:
                    writer.copy_from(header, n)
                bar.update(1)
        total += writer.total_bytes
    bar.close()
    if index is not None:
        new_index = {"metadata": {**index.get("metadata", {}), "total_size": total}, "weight_map": index["weight_map"]}
        import json

        (out_dir / INDEX_NAME).write_text(json.dumps(new_index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return {"shards": len(files), "tensors": len(base), "lora_modules_merged": len(plan.weights),
            "lora_biases_merged": len(plan.biases), "tensors_replaced": len(plan.replace), "bytes_written": total}
