"""Write a random-weight LoRA adapter in peft's on-disk format for a base model directory, without
loading the base (shapes come from the safetensors headers). For tests, benchmarks and checking
the merge stage before training has produced models/lora — never a substitute for training.

    python -m stages.model.random_adapter --base models/base --out /tmp/lora-random --r 8 --layers last:4

``lora_B`` is non-zero (unlike peft's training init), so the adapter really changes the model."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from stages.model.safetensors_stream import model_shards, read_header

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LAYER_RE = re.compile(r"\.layers\.(\d+)\.")


def _pick_layers(spec: str, n_layers: int) -> set[int]:
    if spec == "all":
        return set(range(n_layers))
    if spec.startswith("last:"):
        return set(range(max(0, n_layers - int(spec[5:])), n_layers))
    return {int(x) for x in spec.split(",")}


def write_random_adapter(base_dir: str | Path, out_dir: str | Path, r: int = 8, alpha: float = 16,
                         target_modules: list[str] | None = None, layers: str = "all", seed: int = 0,
                         b_std: float = 0.02, use_rslora: bool = False, rank_pattern: dict | None = None,
                         alpha_pattern: dict | None = None) -> Path:
    """Random LoRA on the 2-D ``<module>.weight`` tensors whose last name part is in ``target_modules``
    (``nn.Linear`` layout: weight [out, in] → lora_A [r, in], lora_B [out, r])."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    from stages.model.adapters import module_rank_alpha

    base_dir, out_dir = Path(base_dir), Path(out_dir)
    targets = list(target_modules or DEFAULT_TARGETS)
    shapes = {}
    for f in model_shards(base_dir)[0]:
        for name, info in read_header(base_dir / f).tensors.items():
            shapes[name] = info.shape
    layer_ids = {int(m.group(1)) for n in shapes if (m := LAYER_RE.search(n))}
    keep = _pick_layers(layers, max(layer_ids) + 1 if layer_ids else 0)
    modules = sorted(n[:-len(".weight")] for n, s in shapes.items()
                     if n.endswith(".weight") and len(s) == 2 and n[:-len(".weight")].rsplit(".", 1)[-1] in targets
                     and ((m := LAYER_RE.search(n)) is None or int(m.group(1)) in keep))
    if not modules:
        raise ValueError(f"{base_dir}: no 2-D weights named {targets} in layers {layers}")
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=modules, lora_dropout=0.0, use_rslora=use_rslora,
                     rank_pattern=rank_pattern or {}, alpha_pattern=alpha_pattern or {},
                     task_type="CAUSAL_LM")
    cfg_dict = cfg.to_dict()
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for m in modules:
        out_f, in_f = shapes[f"{m}.weight"]
        rm = module_rank_alpha(cfg_dict, m)[0]
        tensors[f"base_model.model.{m}.lora_A.weight"] = torch.randn(rm, in_f, generator=gen) / in_f ** 0.5
        tensors[f"base_model.model.{m}.lora_B.weight"] = torch.randn(out_f, rm, generator=gen) * b_std
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg.save_pretrained(str(out_dir))
    save_file(tensors, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    return out_dir


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="models/base")
    ap.add_argument("--out", required=True)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--targets", default=",".join(DEFAULT_TARGETS))
    ap.add_argument("--layers", default="all", help="all | last:N | comma-separated indices")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--b-std", type=float, default=0.02)
    ap.add_argument("--rslora", action="store_true")
    args = ap.parse_args(argv)
    out = write_random_adapter(args.base, args.out, args.r, args.alpha, args.targets.split(","), args.layers,
                               args.seed, args.b_std, args.rslora)
    print(f"wrote random LoRA adapter to {out}")


if __name__ == "__main__":
    main()
