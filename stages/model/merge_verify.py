"""Check a merged model against the unmerged base + adapter it came from.

Both are run on the same prompts (built by stages.model.prompt) and their next-token logits compared
at every real (non-padding) position: max |Δ| must stay within the tolerance, and we report how
often the argmax agrees. The models are loaded one after the other, so peak memory is one model.
We also report how far the adapter moves the logits away from the base (``adapter_effect``) —
if that is zero the check proves nothing, and we say so."""
from __future__ import annotations

import gc
import logging
from pathlib import Path

import torch

from stages.common.jsonio import read_jsonl

log = logging.getLogger("stages.model.merge_verify")

# Used only when no validation split exists and no questions were passed: logged and recorded.
BUILTIN_QUESTIONS = [
    "我最近经常头痛，还伴有恶心，需要做哪些检查？",
    "糖尿病患者平时饮食应该注意什么？",
    "孩子发烧39度，在家可以先怎么处理？",
    "高血压药可以自己停吗？",
]


class MergeVerificationError(RuntimeError):
    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result


def verification_questions(n: int, val_path: str | Path, cli_questions: list[str] | None = None) -> tuple[list[str], str]:
    """(questions, source). CLI questions win; else the first ``n`` of the val split; else — only when
    the val file does not exist — built-in questions, with a loud warning."""
    if cli_questions:
        return list(cli_questions), "cli"
    val_path = Path(val_path)
    if val_path.exists():
        qs = [r["question"] for r in read_jsonl(val_path) if str(r.get("question", "")).strip()]
        if not qs:
            raise MergeVerificationError(f"{val_path}: no records with a 'question'")
        return qs[:n], str(val_path)
    log.warning("!" * 78)
    log.warning("%s does not exist: verifying the merge on %d BUILT-IN questions instead of the val split "
                "(recorded as prompt_source in the metrics)", val_path, min(n, len(BUILTIN_QUESTIONS)))
    log.warning("!" * 78)
    return BUILTIN_QUESTIONS[:n], f"builtin ({val_path} absent)"


@torch.inference_mode()
def _logits(model, batch) -> torch.Tensor:
    dev = next(model.parameters()).device
    out = model(input_ids=batch["input_ids"].to(dev), attention_mask=batch["attention_mask"].to(dev))
    return out.logits.float().cpu()


def verify_merge(merged_dir: str | Path, base_dir: str | Path, adapter_dir: str | Path, scale: float,
                 questions: list[str], system: str, tolerance: float, device: str | None = None,
                 dtype: str = "float32") -> dict:
    """Compare merged vs base+adapter (same scale). Raises MergeVerificationError on drift > tolerance
    or non-finite logits; otherwise returns the figures for metrics/merge.json."""
    from stages.model.adapters import load_with_adapter
    from stages.model.modeling import load_model, load_tokenizer
    from stages.model.prompt import encode_prompts

    tok = load_tokenizer(merged_dir)
    batch = encode_prompts(tok, questions, system)
    mask = batch["attention_mask"].bool()

    ref_model = load_with_adapter(base_dir, adapter_dir, scale=scale, dtype=dtype, device=device)
    ref = _logits(ref_model, batch)[mask]
    with ref_model.disable_adapter():
        base_logits = _logits(ref_model, batch)[mask]
    del ref_model
    gc.collect()
    effect = (ref - base_logits).abs().max().item()
    del base_logits

    merged_model = load_model(merged_dir, dtype=dtype, device=device)
    got = _logits(merged_model, batch)[mask]
    del merged_model
    gc.collect()

    diff = (got - ref).abs()
    finite = bool(torch.isfinite(got).all() and torch.isfinite(ref).all())
    result = {
        "prompts": len(questions),
        "tokens": int(mask.sum()),
        "dtype": dtype,
        "max_abs_logit_diff": diff.max().item() if finite else float("nan"),
        "mean_abs_logit_diff": diff.mean().item() if finite else float("nan"),
        "argmax_agreement": (got.argmax(-1) == ref.argmax(-1)).float().mean().item(),
        "adapter_effect_max_abs": effect,
        "tolerance": tolerance,
    }
    result["passed"] = finite and result["max_abs_logit_diff"] <= tolerance
    if effect == 0.0:
        log.warning("the adapter does not change the logits at scale %g: verification cannot tell a merged model "
                    "from the base", scale)
    if not finite:
        raise MergeVerificationError("non-finite logits (merged or base+adapter): the adapter or merge is corrupt", result)
    if not result["passed"]:
        raise MergeVerificationError(
            f"merged model drifts from base+adapter: max |Δlogit| {result['max_abs_logit_diff']:.3g} > "
            f"merge.verify_tolerance {tolerance:g} (argmax agreement {result['argmax_agreement']:.3f})", result)
    return result
