"""The shared system-prompt KV cache (stages/model/prefix_cache.py) gives the same greedy output and the same
next-token logits as a plain generate call on the full prompt, batched and unbatched."""
from __future__ import annotations

import torch

from stages.model.modeling import load_model, load_tokenizer
from stages.common.config import load_params
from stages.model.prefix_cache import PromptPrefix
from stages.model.prompt import encode_prompts

DEFAULT_SYSTEM = load_params("params.yaml").prompt.system
QUESTIONS = ["头疼怎么办？", "挂号需要带身份证吗，还是医保卡就可以？", "高血压", "Hello，医生在吗"]


def _plain(model, tok, qs, n):
    batch = encode_prompts(tok, qs, DEFAULT_SYSTEM)
    out = model.generate(**batch, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id,
                         output_scores=True, return_dict_in_generate=True)
    return out.sequences[:, batch["input_ids"].shape[1]:], out.scores


def _cached(model, tok, prefix, qs, n):
    kw = prefix.generate_inputs(tok, qs, "cpu")
    out = model.generate(**kw, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id,
                         output_scores=True, return_dict_in_generate=True)
    return out.sequences[:, kw["input_ids"].shape[1]:], out.scores


@torch.inference_mode()
def test_prefix_cache_matches_plain_generate(tiny_model_dir):
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    prefix = PromptPrefix(model, tok, DEFAULT_SYSTEM)
    full = encode_prompts(tok, QUESTIONS[:1], DEFAULT_SYSTEM)["input_ids"][0].tolist()
    assert 20 < len(prefix) < len(full) and full[:len(prefix)] == prefix.ids   # the head, not the whole prompt
    for qs in (QUESTIONS, QUESTIONS[1:2]):
        seq_a, scores_a = _plain(model, tok, qs, 6)
        seq_b, scores_b = _cached(model, tok, prefix, qs, 6)
        assert seq_a.tolist() == seq_b.tolist()
        torch.testing.assert_close(scores_a[0], scores_b[0], atol=1e-4, rtol=1e-4)


def test_prefix_cache_copies_are_independent(tiny_model_dir):
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    prefix = PromptPrefix(model, tok, DEFAULT_SYSTEM)
    first = _cached(model, tok, prefix, QUESTIONS[:2], 4)[0].tolist()
    _cached(model, tok, prefix, QUESTIONS[2:], 8)                  # generate extends its cache copy in place
    assert _cached(model, tok, prefix, QUESTIONS[:2], 4)[0].tolist() == first
    assert prefix.cache(3, len(prefix)).get_seq_length() == len(prefix)


@torch.inference_mode()
def test_prefix_cache_with_unmerged_adapter(tiny_model_dir, tmp_path):
    """Development serving (--model base --adapter lora): the prefix cache works through PeftModel."""
    from stages.model.random_adapter import write_random_adapter

    adapter = write_random_adapter(tiny_model_dir, tmp_path / "lora", r=4, alpha=8, layers="all")
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir, adapter=adapter)
    prefix = PromptPrefix(model, tok, DEFAULT_SYSTEM)
    seq_a, scores_a = _plain(model, tok, QUESTIONS[:3], 5)
    seq_b, scores_b = _cached(model, tok, prefix, QUESTIONS[:3], 5)
    assert seq_a.tolist() == seq_b.tolist()
    torch.testing.assert_close(scores_a[0], scores_b[0], atol=1e-4, rtol=1e-4)
