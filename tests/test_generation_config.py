"""The one generation config (params generation.*, stages.model.generate.Decoding) shared by
predict_base, evaluate and serve, and the dtype/precision choices of issue 14 (tiny random Qwen2)."""
from __future__ import annotations

import pytest
import torch

from stages.common.config import load_params
from stages.model.generate import Decoding, generate_answers
from stages.model.modeling import load_model, load_tokenizer

QS = ["头疼怎么办？", "医院周末可以挂号吗？请问需要带什么材料", "发烧"]


def _ngrams(ids: list[int], n: int) -> list[tuple]:
    return [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(tiny_model_dir, "float32", "cpu"), load_tokenizer(tiny_model_dir)


def looping_model(tiny):
    """The tiny model with attention and MLP outputs zeroed and the LM head equal to the embeddings:
    the most likely next token is the current one, so greedy decoding repeats it (a loop)."""
    import copy

    model = copy.deepcopy(tiny[0])
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.lm_head.weight.copy_(model.model.embed_tokens.weight)
    return model


def test_decoding_from_params_and_kwargs(tiny):
    model, tok = tiny
    p = load_params("params.yaml")
    d = Decoding.from_params(p.generation)
    assert d.max_new_tokens == p.generation.max_new_tokens and d.stop == tuple(p.generation.stop_tokens)
    kw = Decoding(repetition_penalty=1.2, no_repeat_ngram_size=4).generate_kwargs(model, tok)
    (proc,) = kw["logits_processor"]
    assert (proc.penalty, proc.ngram) == (1.2, 4) and kw["do_sample"] is False
    assert tok.convert_tokens_to_ids("<|im_end|>") in kw["eos_token_id"]
    assert "logits_processor" not in Decoding().generate_kwargs(model, tok)     # 1.0 / 0 = off, not passed
    with pytest.raises(ValueError, match="generation.stop_tokens"):
        Decoding(stop=("not-a-token-xyz",)).stop_ids(model, tok)


def test_no_repeat_ngram_and_penalty_reach_model_generate(tiny):
    """The Decoding kwargs change what model.generate emits: with no_repeat_ngram_size=3 no token
    3-gram of the prompt+answer repeats in the answer; plain greedy on a random model does repeat."""
    from stages.model.prompt import encode_prompts

    _, tok = tiny
    model = looping_model(tiny)
    batch = encode_prompts(tok, QS, "你是客服。")
    outs = {}
    for name, dec in (("plain", Decoding()), ("ngram", Decoding(no_repeat_ngram_size=3)),
                      ("penalty", Decoding(repetition_penalty=5.0))):
        kw = dec.generate_kwargs(model, tok)
        kw["eos_token_id"] = [-1]           # a random model may stop anywhere: force 60 tokens
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=60, **kw)
        outs[name] = out[:, batch["input_ids"].shape[1]:].tolist()
    rep = lambda row: len(_ngrams(row, 3)) - len(set(_ngrams(row, 3)))   # noqa: E731
    assert sum(rep(r) for r in outs["plain"]) > 0
    assert all(rep(r) == 0 for r in outs["ngram"])
    assert sum(rep(r) for r in outs["penalty"]) < sum(rep(r) for r in outs["plain"])


def test_min_new_tokens_holds_back_the_stop_tokens(tiny):
    """generation.min_new_tokens reaches model.generate: a model whose most likely token is always
    <|im_end|> answers nothing with plain greedy, exactly N tokens with min_new_tokens N, and hits the
    cap when the cap is below N. describe() records it only when it is on (old predictions stay valid)."""
    import copy

    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    end, other = tok.convert_tokens_to_ids("<|im_end|>"), tok.encode("好")[0]
    head = torch.nn.Linear(model.lm_head.in_features, model.lm_head.out_features, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[end], head.bias[other] = 10.0, 5.0
    model.lm_head = head
    run = lambda dec: generate_answers(model, tok, QS, "你是客服。", batch_size=3, progress=False, decoding=dec)  # noqa: E731
    assert [r["new_tokens"] for r in run(Decoding(max_new_tokens=12))] == [0, 0, 0]
    held = run(Decoding(max_new_tokens=12, min_new_tokens=5))
    assert [(r["new_tokens"], r["hit_cap"]) for r in held] == [(5, False)] * 3
    assert all(r["answer"] == "好" * 5 for r in held)
    assert [(r["new_tokens"], r["hit_cap"]) for r in run(Decoding(max_new_tokens=3, min_new_tokens=5))] == [(3, True)] * 3
    assert "min_new_tokens" not in Decoding().describe()
    assert Decoding(min_new_tokens=7).describe()["min_new_tokens"] == 7


def test_generation_bench_parses_a_floor_and_reads_its_short_messages():
    """bench/generation_config.py: ``minN`` sets the floor (joined with other parts), an unknown part fails, and
    the short-message probe file holds non-urgent one-liners (no emergency rule fires on any of them)."""
    import sys
    from pathlib import Path

    from stages.safety.rules import detect_emergency

    bench = Path(__file__).resolve().parents[1] / "bench"
    sys.path.insert(0, str(bench))
    from generation_config import parse, read_short

    d = parse("rp1.1+dry0.8+min64", 256, ("<|im_end|>",))
    assert (d.min_new_tokens, d.repetition_penalty, d.dry_multiplier, d.max_new_tokens) == (64, 1.1, 0.8, 256)
    assert parse("plain", 256, ("<|im_end|>",)).min_new_tokens == 0
    # dryM without aN/bX means params' base and allowed length (main passes them), aN/bX override them
    assert (d.dry_base, d.dry_allowed_length) == (1.75, 2)                       # no defaults given: the class's
    p = parse("dry0.8", 256, ("<|im_end|>",), (1.5, 1))
    assert (p.dry_multiplier, p.dry_base, p.dry_allowed_length) == (0.8, 1.5, 1)
    assert parse("dry0.8a3b2", 256, ("<|im_end|>",), (1.5, 1)).dry_allowed_length == 3
    with pytest.raises(SystemExit, match="minN"):
        parse("minx", 256, ("<|im_end|>",))
    short = read_short(bench / "short_messages.txt")
    assert len(short) >= 20 and len(set(short)) == len(short) and all(len(m) <= 12 for m in short)
    assert not any(m.startswith("#") for m in short) and not any(detect_emergency(m) for m in short)


def test_serve_stream_decodes_with_the_same_config(tiny):
    """serve's BatchStream and evaluate's generate_answers give the same answers for one Decoding
    (min_new_tokens included)."""
    from serve.streaming import BatchStream

    model, tok = tiny
    dec = Decoding(max_new_tokens=12, repetition_penalty=1.3, min_new_tokens=4)
    ref = generate_answers(model, tok, QS, "你是客服。", batch_size=3, sort_by_length=False, progress=False,
                           decoding=dec)
    stream = BatchStream(model, tok, QS, "你是客服。", [12] * 3, None, dec)
    texts = ["", "", ""]
    for deltas in stream:
        texts = [t + d for t, d in zip(texts, deltas)]
    assert texts == [r["answer"] for r in ref]
    assert stream.new_tokens == [r["new_tokens"] for r in ref]


def test_serve_settings_read_the_generation_config():
    from serve.settings import ServeSettings

    p = load_params("params.yaml")
    p = p.model_copy(update={"generation": p.generation.model_copy(update={"repetition_penalty": 1.15}),
                             "serve": p.serve.model_copy(update={"max_new_tokens": 0})})
    s = ServeSettings.from_params(p, "models/merged")
    assert s.model.decoding.repetition_penalty == 1.15
    assert s.model.max_new_tokens == p.generation.max_new_tokens          # 0 = the generation budget
    assert s.describe()["generation"]["repetition_penalty"] == 1.15


def test_inference_dtype_and_training_precision_follow_the_hardware(monkeypatch):
    from stages.model import modeling
    from stages.training import setup

    monkeypatch.setattr(modeling, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(modeling, "pick_device", lambda: "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert modeling.resolve_inference_dtype("auto", "cpu") is torch.bfloat16
    assert modeling.resolve_dtype("auto", "cpu") is torch.float32        # storage (base stage) stays fp32
    assert setup.resolve_mixed_precision("auto") == "bf16"
    assert setup.resolve_mixed_precision("no") == "no"
    monkeypatch.setattr(modeling, "cpu_has_native_bf16", lambda: False)
    assert modeling.resolve_inference_dtype("auto", "cpu") is torch.float32
    assert setup.resolve_mixed_precision("auto") == "no"
    assert modeling.resolve_inference_dtype("float32", "cpu") is torch.float32
    # GPUs keep their own path
    assert modeling.resolve_inference_dtype("auto", "cuda") is modeling.resolve_dtype("auto", "cuda")


def test_answer_repetition_matches_transformers_on_the_answer_and_ignores_the_prompt():
    """generation.* penalise repeats inside the answer only: the same arithmetic as transformers'
    processors over the answer tokens, while prompt tokens (e.g. the system prompt's 120/急诊 phrase)
    stay free to be used."""
    import torch
    from transformers.generation.logits_process import (NoRepeatNGramLogitsProcessor,
                                                        RepetitionPenaltyLogitsProcessor)

    from stages.model.generate import AnswerRepetition

    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        ans = torch.randint(10, 20, (1, 30), generator=gen)
        ids = torch.cat([torch.tensor([[5, 6, 7, 1, 8, 9]]), ans], 1)   # prompt, marker 1, role header
        scores = torch.randn(1, 40, generator=gen)
        ours = AnswerRepetition(1, 1.3, 3)(ids, scores.clone())
        ref = NoRepeatNGramLogitsProcessor(3)(ans, RepetitionPenaltyLogitsProcessor(1.3)(ans, scores.clone()))
        assert torch.equal(ours, ref)
    ids = torch.tensor([[30, 31, 32, 30, 31, 1, 8, 9, 12]])
    out = AnswerRepetition(1, 2.0, 2)(ids, torch.ones(1, 40))
    assert out[0, 30] == 1 and out[0, 31] == 1 and out[0, 32] == 1      # prompt repeats: not penalised
    assert out[0, 12] == 0.5                                            # answer token: penalised


def test_decoding_uses_the_answer_only_processor(tokenizer):
    from stages.model.generate import AnswerRepetition, Decoding

    kw = Decoding(repetition_penalty=1.05, no_repeat_ngram_size=5).generate_kwargs(
        type("M", (), {"generation_config": type("G", (), {"eos_token_id": None})()})(), tokenizer)
    assert "repetition_penalty" not in kw and "no_repeat_ngram_size" not in kw
    (proc,) = kw["logits_processor"]
    assert isinstance(proc, AnswerRepetition) and proc.start_id == tokenizer.convert_tokens_to_ids("<|im_start|>")


def test_dry_match_lengths_find_the_token_that_would_extend_a_repeat():
    """DRY's signal: after "… 1 2 3 … 1 2", generating 3 would repeat "1 2 3"; the match length is how many
    of the answer's last tokens already repeat an earlier run."""
    from stages.model.generate import dry_match_lengths

    assert dry_match_lengths([1, 2, 3, 1, 2], 2) == {3: 2}
    assert dry_match_lengths([1, 2, 3, 1, 2], 3) == {}                 # a 2-token repeat is allowed at 3
    assert dry_match_lengths([7, 1, 2, 3, 9, 1, 2, 3], 2) == {9: 3}    # the longest match wins
    assert dry_match_lengths([5, 5, 5], 1) == {5: 2}                   # a run of one token
    assert dry_match_lengths([1, 2, 1, 3, 1], 1) == {2: 1, 3: 1}
    assert dry_match_lengths([], 2) == {} and dry_match_lengths([4], 1) == {}


def test_dry_penalty_is_exponential_in_the_repeat_and_ignores_the_prompt():
    from stages.model.generate import AnswerRepetition

    # prompt 30 31 32 30 31, marker 1, role header 8 9, answer 12 13 14 12 13
    ids = torch.tensor([[30, 31, 32, 30, 31, 1, 8, 9, 12, 13, 14, 12, 13]])
    out = AnswerRepetition(1, 1.0, 0, (0.8, 2.0, 1))(ids, torch.zeros(1, 40))
    assert out[0, 14].item() == pytest.approx(-0.8 * 2.0 ** (2 - 1))  # would repeat "12 13 14"
    assert out[0, 32] == 0                                            # the prompt's repeat is free
    assert int((out[0] != 0).sum()) == 1
    off = AnswerRepetition(1, 1.0, 0, (0.0, 2.0, 1))(ids, torch.zeros(1, 40))
    assert torch.equal(off, torch.zeros(1, 40))


def test_dry_reaches_model_generate_and_params(tiny):
    """generation.dry_* flow from params into model.generate: on the looping model (greedy repeats the
    current token forever) a strong DRY leaves no token 4-gram repeated in the answer."""
    from stages.model.prompt import encode_prompts

    p = load_params("params.yaml")
    gp = p.generation.model_copy(update={"dry_multiplier": 50.0, "dry_allowed_length": 3, "dry_base": 1.5})
    dec = Decoding.from_params(gp)
    assert dec.describe()["dry"] == {"multiplier": 50.0, "base": 1.5, "allowed_length": 3}
    assert "dry" not in Decoding().describe()
    _, tok = tiny
    model = looping_model(tiny)
    kw = dec.generate_kwargs(model, tok)
    kw["eos_token_id"] = [-1]
    batch = encode_prompts(tok, QS, "你是客服。")
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=60, **kw)
    rows = out[:, batch["input_ids"].shape[1]:].tolist()
    assert all(len(_ngrams(r, 4)) == len(set(_ngrams(r, 4))) for r in rows)
    assert all(len(set(r)) > 10 for r in rows)
