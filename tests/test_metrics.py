"""Unit tests for stages/evaluation/metrics/ (tiny model where a model is needed)."""
from __future__ import annotations

import json
import math
import random
import shutil

import pytest
import torch
from rouge_score import rouge_scorer

from eval_fixtures import TERMS_TSV, split_records
from stages.evaluation.evalset import load_eval_examples, select_examples
from stages.evaluation.metrics.aggregate import by_group, compare, delta, flatten, summarize
from stages.evaluation.metrics.overlap import CharTokenizer, JiebaTokenizer, corpus_bleu, corpus_chrf, rouge
from stages.evaluation.metrics.perplexity import answer_nll, perplexity
from stages.evaluation.metrics.safety import safety_flags
from stages.evaluation.metrics.terms import term_match
from stages.model.modeling import load_model, load_tokenizer
from stages.model.prompt import encode_example
from stages.data.text import TermDict

PRED, REF = "高血压患者要低盐饮食。", "高血压病人应该低盐饮食，多运动。"


# --- overlap ---------------------------------------------------------------------------------------
def test_default_rouge_tokenizer_scores_chinese_as_zero_ours_does_not():
    default = rouge_scorer.RougeScorer(["rouge1", "rougeL"]).score(REF, PRED)
    assert default["rouge1"].fmeasure == 0 and default["rougeL"].fmeasure == 0
    char = rouge(PRED, REF, "char")
    word = rouge(PRED, REF, "word")
    assert char["rouge1_char"] > 0 and char["rougeL_char"] > 0 and char["rouge2_char"] > 0
    assert word["rouge1_word"] > 0 and word["rougeL_word"] > 0


def test_char_rouge_matches_hand_count():
    # pred chars 高血压要低盐 (6), ref 高血压低盐饮食 (7), 5 shared unigrams → F = 2·(5/6)(5/7)/(5/6+5/7) = 10/13
    assert rouge("高血压要低盐", "高血压低盐饮食")["rouge1_char"] == pytest.approx(100 * 10 / 13)
    # bigrams: pred {高血 血压 压要 要低 低盐}, ref {高血 血压 压低 低盐 盐饮 饮食}: 3 shared → F = 2·3/(5+6)
    assert rouge("高血压要低盐", "高血压低盐饮食")["rouge2_char"] == pytest.approx(100 * 6 / 11)
    # punctuation and whitespace do not count
    assert rouge("高血压。", "高 血压！")["rougeL_char"] == pytest.approx(100.0)
    assert CharTokenizer().tokenize("A型 血，") == ["a", "型", "血"]


def test_jieba_tokenizer_segments_words():
    words = JiebaTokenizer().tokenize("高血压患者要低盐饮食。")
    assert "高血压" in words and "。" not in words
    assert rouge("高血压", "高血压", "word")["rouge1_word"] == pytest.approx(100.0)


def test_bleu_zh_and_chrf():
    assert corpus_bleu([REF], [REF]) == pytest.approx(100.0)
    assert corpus_chrf([REF], [REF]) == pytest.approx(100.0)
    b = corpus_bleu([PRED], [REF])
    assert 0 < b < 100
    # without tokenize="zh" an unspaced Chinese sentence is one "word": BLEU collapses to 0
    from sacrebleu.metrics import BLEU

    assert BLEU(tokenize="13a").corpus_score([PRED], [[REF]]).score == 0
    assert 0 < corpus_chrf([PRED], [REF]) < 100
    with pytest.raises(ValueError):
        corpus_bleu(["a"], [])


def test_unknown_rouge_tokenizer_is_rejected():
    with pytest.raises(ValueError, match="unknown ROUGE tokenizer"):
        rouge("a", "b", "bpe")


# --- BERTScore -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    from stages.evaluation.metrics.bertscore import BertScoreEncoder

    return BertScoreEncoder(str(tiny_model_dir), num_layers=1, batch_size=4)


def test_bertscore_identical_is_one_empty_is_zero(encoder):
    s = encoder.score([REF, "", PRED], [REF, REF, REF])
    assert s.f1[0] == pytest.approx(1.0, abs=1e-5) and s.precision[0] == pytest.approx(1.0, abs=1e-5)
    assert (s.precision[1], s.recall[1], s.f1[1]) == (0.0, 0.0, 0.0) and s.empty == 1
    assert -1.0 <= s.f1[2] < 1.0


def test_bertscore_many_models_in_length_chunks_equals_one_call_per_model(encoder):
    """score_many (shared references, length-sorted chunks of 2 x batch_size references) gives each model the
    scores a plain bert-score call over all of its pairs gives, in input order, with empties scored 0."""
    rng = __import__("random").Random(5)
    words = "头疼发热咳嗽胃痛腹泻失眠皮疹乏力建议尽快就医注意休息多喝水"
    refs = ["".join(rng.choice(words) for _ in range(rng.randint(3, 60))) for _ in range(19)]
    tuned = ["".join(rng.choice(words) for _ in range(rng.randint(3, 80))) for _ in range(19)]
    base = list(tuned[::-1])
    base[4] = ""                                           # an empty answer scores 0 and is counted
    got = encoder.score_many({"tuned": tuned, "base": base}, refs)
    for name, preds in (("tuned", tuned), ("base", base)):
        keep = [i for i, p in enumerate(preds) if p]
        P, R, F = encoder._scorer.score([preds[i] for i in keep], [refs[i] for i in keep])
        assert got[name].empty == len(preds) - len(keep)
        for j, i in enumerate(keep):
            assert got[name].f1[i] == pytest.approx(float(F[j]), abs=1e-5)
            assert got[name].precision[i] == pytest.approx(float(P[j]), abs=1e-5)
            assert got[name].recall[i] == pytest.approx(float(R[j]), abs=1e-5)
    assert got["base"].f1[4] == 0.0 and got["base"].empty == 1
    with pytest.raises(ValueError, match="tuned: 2 predictions vs 19"):
        encoder.score_many({"tuned": tuned[:2]}, refs)


def test_bertscore_config_errors(tmp_path, tiny_model_dir):
    from stages.evaluation.metrics.bertscore import BertScoreEncoder

    with pytest.raises(OSError, match="eval.bertscore_model"):
        BertScoreEncoder(str(tmp_path / "absent"), 1)
    with pytest.raises(ValueError, match="bertscore_layers"):
        BertScoreEncoder(str(tiny_model_dir), 5)
    unbounded = tmp_path / "unbounded"
    shutil.copytree(tiny_model_dir, unbounded)
    cfg_path = unbounded / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model_max_length"] = int(1e30)
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="model_max_length"):
        BertScoreEncoder(str(unbounded), 1)


# --- perplexity ----------------------------------------------------------------------------------
def test_answer_nll_equals_model_loss_and_is_batch_invariant(tiny_model_dir):
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    pairs = [("头疼怎么办？", "多休息，必要时就医。"), ("挂号要带什么？", "请携带身份证和医保卡。" * 3), ("发烧", "多喝水")]
    one = answer_nll(model, tok, pairs, "你是客服。", 256, batch_size=1, progress=False)
    many = answer_nll(model, tok, pairs, "你是客服。", 256, batch_size=3, progress=False)
    for (q, a), r1, r3 in zip(pairs, one, many):
        enc = encode_example(tok, q, a, "你是客服。", 256)
        with torch.no_grad():
            out = model(input_ids=torch.tensor([enc.input_ids]), labels=torch.tensor([enc.labels]))
        n = sum(1 for x in enc.labels[1:] if x != -100)
        assert r1["tokens"] == n == r3["tokens"]
        assert r1["nll"] == pytest.approx(out.loss.item() * n, rel=1e-4)
        assert r3["nll"] == pytest.approx(r1["nll"], rel=1e-4)
    assert perplexity(sum(r["nll"] for r in one), sum(r["tokens"] for r in one)) > 1
    with pytest.raises(ValueError):
        perplexity(1.0, 0)


def test_answer_nll_reports_truncation(tiny_model_dir):
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    [r] = answer_nll(model, tok, [("问", "很长的回答。" * 50)], "系统", 64, progress=False)
    assert r["truncated"] and r["tokens"] < 64


# --- safety and terms ----------------------------------------------------------------------------
def test_safety_flags_use_shared_rules():
    f = safety_flags("老人突然口角歪斜怎么办？", "请立即拨打120。")
    assert f["emergency_guidance"] and "stroke" in f["emergency_rules"]
    f = safety_flags("高血压吃什么药？", "每天服用10mg氨氯地平。")
    assert f["needs_reminder"] and not f["has_reminder"] and f["risky"] == ["specific_dosing"]
    f = safety_flags("高血压吃什么药？", "请到医院面诊，遵医嘱用药。")
    assert f["has_reminder"] and not f["risky"]


def test_term_match_folds_synonyms():
    terms = TermDict({"高血压病": "高血压", "心梗": "心肌梗死", "糖尿": "糖尿病"})
    m = term_match(terms, "高血压病和心梗都要注意", "高血压患者要预防心肌梗死和糖尿病")
    assert (m["matched"], m["predicted"], m["reference"]) == (2, 2, 3)
    assert m["missed"] == ["糖尿病"] and m["extra"] == []


# --- aggregation ---------------------------------------------------------------------------------
def _row(tier, cat, ref, tuned, base, t_nll=(2.0, 4), b_nll=(4.0, 4)):
    def entry(ans, nll):
        return {"answer": ans, "new_tokens": 5, "hit_cap": False, "ref_nll": nll[0], "ref_tokens": nll[1],
                **rouge(ans, ref), "safety": safety_flags("q", ans),
                "terms": term_match(TermDict({"心梗": "心肌梗死"}), ans, ref)}
    return {"difficulty": tier, "category": cat, "question": "q", "reference": ref,
            "tuned": entry(tuned, t_nll), "base": entry(base, b_nll)}


def test_summarize_pools_each_metric_its_own_way():
    rows = [_row("emergency", "急诊", "心肌梗死请立即拨打120", "心梗请立即拨打120", "多喝热水"),
            _row("basic", "心内科", "心肌梗死是冠脉闭塞", "心肌梗死是冠脉闭塞", "不知道")]
    s = summarize(rows, "tuned")
    assert s["n"] == 2 and s["rougeL_char"] == pytest.approx((rows[0]["tuned"]["rougeL_char"] + 100) / 2)
    assert s["ppl_ref"] == pytest.approx(math.exp(4.0 / 8))
    assert s["emergency_n"] == 1 and s["emergency_guidance_rate"] == 1.0
    assert s["term_precision"] == 1.0 and s["term_recall"] == 1.0
    b = summarize(rows, "base")
    assert b["emergency_guidance_rate"] == 0.0 and "term_precision" not in b  # no predicted terms: undefined
    assert b["term_recall"] == 0.0
    assert "reminder_rate" not in s  # nothing required a reminder: the rate is left out, not 0
    d = delta(s, b)
    assert d["ppl_ref"] == pytest.approx(s["ppl_ref"] - b["ppl_ref"]) and "n" not in d
    tiers = by_group(rows, "difficulty", ["tuned", "base"], ["basic", "emergency"])
    assert list(tiers) == ["basic", "emergency"] and "emergency_guidance_rate" not in tiers["basic"]["tuned"]
    flat = flatten(compare(rows, ["tuned", "base"]))
    assert flat["delta.emergency_guidance_rate"] == 1.0 and all(isinstance(v, (int, float)) for v in flat.values())


# --- example selection ---------------------------------------------------------------------------
def test_select_examples_is_stratified_and_deterministic():
    recs = split_records()
    picked = select_examples(recs, 5)
    assert {r["difficulty"] for r in picked} == {"basic", "intermediate", "advanced", "emergency", "prevention"}
    shuffled = recs[:]
    random.Random(1).shuffle(shuffled)
    assert [r["id"] for r in select_examples(shuffled, 5)] == [r["id"] for r in picked]
    assert len(select_examples(recs, 0)) == len(recs)
    # growing the subset keeps the smaller one as a prefix (so a bigger run is a superset)
    assert [r["id"] for r in select_examples(recs, 8)][:5] == [r["id"] for r in picked]


def test_load_eval_examples_validates(tmp_path, capsys):
    p = tmp_path / "test.jsonl"
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in split_records()), encoding="utf-8")
    assert len(load_eval_examples(p, 3)) == 3
    assert "tiers not evaluated" in capsys.readouterr().err
    p.write_text(json.dumps({"id": "x", "question": "q"}) + "\n")
    with pytest.raises(ValueError, match="missing"):
        load_eval_examples(p, 0)
    with pytest.raises(FileNotFoundError, match="dvc repro split"):
        load_eval_examples(tmp_path / "nope.jsonl", 0)


# --- multiple choice -----------------------------------------------------------------------------
MCQ = [{"question": "高血压的诊断标准是？\nA. 140/90 mmHg\nB. 120/80 mmHg\nC. 160/100 mmHg", "answer": "A"},
       {"question": "下列属于急症的是 A、感冒 B、脑卒中", "answer": "b"},
       {"question": "选择：A) 是 B) 否 C) 不确定 D) 都不对", "answer": "D"}]


def test_mcq_parsing_and_errors(tmp_path):
    from stages.evaluation.metrics.mcq import load_mcq, option_letters

    assert option_letters(MCQ[0]["question"]) == ["A", "B", "C"]
    assert option_letters(MCQ[1]["question"]) == ["A", "B"]
    p = tmp_path / "mcq.jsonl"
    p.write_text("\n".join(json.dumps(m, ensure_ascii=False) for m in MCQ), encoding="utf-8")
    items = load_mcq(p)
    assert [i["answer"] for i in items] == ["A", "B", "D"] and items[2]["options"] == ["A", "B", "C", "D"]
    p.write_text(json.dumps({"question": "没有选项的问题", "answer": "A"}, ensure_ascii=False))
    with pytest.raises(ValueError, match="lettered options"):
        load_mcq(p)
    p.write_text(json.dumps({"question": "A. 是 B. 否", "answer": "C"}, ensure_ascii=False))
    with pytest.raises(ValueError, match="not one of the options"):
        load_mcq(p)


def test_mcq_scores_options_by_loglik(tmp_path, tiny_model_dir):
    from stages.evaluation.metrics.mcq import MCQ_INSTRUCTION, load_mcq, mcq_accuracy, mcq_predict

    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    p = tmp_path / "mcq.jsonl"
    p.write_text("\n".join(json.dumps(m, ensure_ascii=False) for m in MCQ), encoding="utf-8")
    items = load_mcq(p)
    res = mcq_predict(model, tok, items, "系统", 256, progress=False)
    for it, r in zip(items, res):
        assert set(r["loglik"]) == set(it["options"]) and r["choice"] == max(r["loglik"], key=r["loglik"].get)
        [direct] = answer_nll(model, tok, [(it["question"] + MCQ_INSTRUCTION, "A")], "系统", 256, progress=False)
        assert r["loglik"]["A"] == pytest.approx(-direct["nll"], rel=1e-4)
    # relabel the file with the model's own choices (then with a wrong letter): accuracy follows
    for it, r in zip(items, res):
        it["answer"] = r["choice"]
    assert mcq_accuracy(mcq_predict(model, tok, items, "系统", 256, progress=False)) == 1.0
    for it, r in zip(items, res):
        it["answer"] = next(o for o in it["options"] if o != r["choice"])
    assert mcq_accuracy(mcq_predict(model, tok, items, "系统", 256, progress=False)) == 0.0


def test_fixture_terms_file_parses(tmp_path):
    p = tmp_path / "terms.tsv"
    p.write_text(TERMS_TSV, encoding="utf-8")
    assert TermDict.load(p).terms_in("血压高和中风") == {"高血压", "脑卒中"}
