"""Dedup catches what a person calls a duplicate: noisy copies of real rows go, distinct questions
that share a template stay (labelled set: stages/data/noise.py; full-size figures: bench/dedup_quality.py)."""
import json

from stages import clean
from stages.common.config import CleanParams, DataParams
from stages.common.jsonio import read_jsonl
from stages.data.dupkeys import dedup_text, question_core
from stages.data.noise import dup_scores, labelled_set, load_real_pairs


def test_labelled_set_recall_and_precision(tmp_path, shared_data):
    pairs = load_real_pairs([shared_data / "cmd_internal_medicine.gb18030.csv"])
    rows = labelled_set(pairs, n_bases=200, copies=2, seed=3)
    kinds = {r["kind"].split(":")[0] for r in rows}
    assert kinds == {"base", "copy", "template_wrap", "template_slot"}
    assert rows == labelled_set(pairs, n_bases=200, copies=2, seed=3)          # deterministic
    f = tmp_path / "l.jsonl"
    f.write_text("".join(json.dumps({"question": r["question"], "answer": r["answer"]}, ensure_ascii=False) + "\n"
                         for r in rows), encoding="utf-8")
    clean.run(DataParams(sources=[str(f)]), CleanParams(workers=1, terms_file=""), tmp_path / "o", tmp_path / "m.json")
    s = dup_scores(rows, read_jsonl(tmp_path / "o/qa.jsonl"), read_jsonl(tmp_path / "o/rejected.jsonl"))
    assert s["recall"] >= 0.95 and s["precision"] >= 0.99, s


def test_keys_fold_noise_but_not_content():
    assert question_core("糖尿病飲食怎麼安排？，謝謝12") == question_core("糖尿病饮食怎么安排?") == "糖尿病饮食怎么安排"
    assert question_core("血压150正常吗") != question_core("血压180正常吗")      # numbers kept unless after a courtesy
    assert dedup_text("Ab，c", "答 案") == "abc\x1f答案"


def test_cluster_profile_builds_dependent_slurm_arrays(tmp_path):
    """The shipped Slurm profile is valid: three dependent job arrays (nothing is submitted)."""
    from stages.data.dupkeys import BandConfig
    from stages.data.neardup import executors

    sig, buckets, clusters = executors(tmp_path, 7, BandConfig(), 2, "slurm")
    assert type(sig).__name__ == "SlurmPipelineExecutor"
    assert (sig.tasks, buckets.tasks, clusters.tasks) == (7, 24, 1)
    assert buckets.depends is sig and clusters.depends is buckets and clusters.mem_per_cpu_gb > sig.mem_per_cpu_gb
