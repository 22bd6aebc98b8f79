"""Round-trip check of an exported GGUF: load it back with transformers' ``gguf_file=`` loader (which
de-quantizes to float32) and compare it with the HF model it came from, on the verification prompts.

* greedy tokens: each model generates ``new_tokens`` greedily from the same prompts (same eos/pad);
  counted per prompt as identical or not;
* logits: both models score the reference model's own prompt + greedy continuation (teacher forced);
  max and mean |Δlogit| over every real position, and how often the argmax agrees;
* tokenizer: the GGUF's tokenizer must encode every rendered prompt to the same ids and carry the same
  chat template.
The models are loaded one after the other's outputs are kept (logits on CPU), so peak memory is one
model plus the reference's logits."""
from __future__ import annotations

import gc
from pathlib import Path

import torch

from stages.model.modeling import load_model, load_tokenizer
from stages.model.prompt import encode_prompts, render_prompt


@torch.inference_mode()
def _greedy(model, tok, batch, new_tokens: int) -> torch.Tensor:
    eos = model.generation_config.eos_token_id if model.generation_config.eos_token_id is not None else tok.eos_token_id
    out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], do_sample=False,
                         max_new_tokens=new_tokens, min_new_tokens=new_tokens, eos_token_id=eos,
                         pad_token_id=tok.pad_token_id)
    return out[:, batch["input_ids"].shape[1]:]


@torch.inference_mode()
def _logits(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids, attention_mask=mask).logits.float()[mask.bool()]


class Reference:
    """The HF model's greedy continuations and logits, computed once for all exported files."""

    def __init__(self, model_dir: str | Path, questions: list[str], system: str, new_tokens: int):
        self.tok = load_tokenizer(model_dir)
        self.prompts = [render_prompt(self.tok, q, system) for q in questions]
        self.template = self.tok.chat_template
        self.batch = encode_prompts(self.tok, questions, system)
        self.new_tokens = new_tokens
        model = load_model(model_dir, torch.float32, "cpu")
        self.eos = model.generation_config.eos_token_id
        self.tokens = _greedy(model, self.tok, self.batch, new_tokens)
        self.ids = torch.cat([self.batch["input_ids"], self.tokens], 1)
        self.mask = torch.cat([self.batch["attention_mask"], torch.ones_like(self.tokens)], 1)
        self.logits = _logits(model, self.ids, self.mask)
        del model
        gc.collect()


def compare(ref: Reference, gguf_path: str | Path) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    gtok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    same_ids = sum(gtok(p, add_special_tokens=False).input_ids == ref.tok(p, add_special_tokens=False).input_ids
                   for p in ref.prompts)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                 dtype=torch.float32)
    model.eval()
    model.generation_config.eos_token_id = ref.eos
    tokens = _greedy(model, ref.tok, ref.batch, ref.new_tokens)
    got = _logits(model, ref.ids, ref.mask)
    del model
    gc.collect()
    diff = (got - ref.logits).abs()
    finite = bool(torch.isfinite(got).all())
    return {
        "prompts": len(ref.prompts),
        "scored_positions": int(ref.mask.sum()),
        "greedy_identical_prompts": int(sum(bool(torch.equal(a, b)) for a, b in zip(tokens, ref.tokens))),
        "greedy_identical_tokens": int((tokens == ref.tokens).sum()),
        "greedy_tokens": int(ref.tokens.numel()),
        "max_abs_logit_diff": round(diff.max().item(), 6) if finite else float("nan"),
        "mean_abs_logit_diff": round(diff.mean().item(), 6) if finite else float("nan"),
        "argmax_agreement": round((got.argmax(-1) == ref.logits.argmax(-1)).float().mean().item(), 6),
        "tokenizer_identical_prompts": int(same_ids),
        "chat_template_identical": gtok.chat_template == ref.template,
    }


def problems(quant: str, result: dict, tolerance: float, identical_required: bool) -> list[str]:
    """Why this export fails the check (empty = it passes)."""
    out = []
    if not result["max_abs_logit_diff"] <= tolerance:       # also catches NaN
        out.append(f"{quant}: max |logit diff| {result['max_abs_logit_diff']} > export.tolerance.{quant} {tolerance}")
    if identical_required and result["greedy_identical_prompts"] != result["prompts"]:
        out.append(f"{quant}: greedy tokens differ on {result['prompts'] - result['greedy_identical_prompts']} "
                   f"of {result['prompts']} prompts (export.identical_tokens requires all identical)")
    if result["tokenizer_identical_prompts"] != result["prompts"]:
        out.append(f"{quant}: the GGUF tokenizer encodes {result['prompts'] - result['tokenizer_identical_prompts']} "
                   "prompts differently")
    if not result["chat_template_identical"]:
        out.append(f"{quant}: the GGUF chat template differs from the model's")
    return out
