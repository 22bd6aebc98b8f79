"""triage stage: train the emergency / self-harm pre-check classifier and measure it.

    python -m stages.triage

1. authored data (``triage.data_dir``/*.jsonl) → seeded (label, condition)-stratified train/val/test
   (``data/triage_split/``; test is never seen by training or by the threshold choice);
2. + the QA corpus' train/val questions as extra training rows (``triage.corpus_*``);
3. each candidate (``triage.candidates``) is scored on rows it was not fitted on — with ``triage.cv_folds``
   (default), out-of-fold over train+val (seeded folds stratified like the split); with 0, the val split —
   and on those scores the (urgency, self-harm) thresholds are the pair with the fewest false alarms whose
   rules ∪ classifier recall reaches ``triage.val_recall`` for each class (emergency, self_harm); the
   candidate with the best recall, then the fewest false alarms, is kept and fitted on train+val (with
   folds) or train (without);
4. the reply index: the cleaned corpus' emergency-tier questions with their vetted answers;
5. ``metrics/triage.json``: rules-only / classifier-only / rules ∪ classifier on cv (out-of-fold) or val, test and the
   independent set (``triage.independent``, measured only) — recall, false-alarm rate, per class and per
   condition group; ``metrics/plots/triage_pr.json`` (test precision-recall);
6. fails when test recall < ``triage.min_recall``;
7. the injection classifier (``triage.injection``, stages/safety/injection_model.py) into the same folder, its
   figures under ``injection`` in the metrics.
Outputs hold content only: the same inputs give byte-identical files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stages.common.config import TriageParams, load_params
from stages.common.jsonio import atomic_dir, write_json, write_jsonl
from stages.safety.injection_model import fit_injection
from stages.safety.normalize import match_text
from stages.safety.replies import ReplyIndex
from stages.safety.rules import emergency_hits, rule_label
from stages.safety.triage import Triager, rule_stands
from stages.safety.triage_data import (corpus_emergency_qa, corpus_rows, fold_ids, load_authored, read_rows,
                                       split_rows, train_only_rows)
from stages.safety.triage_eval import (choose_self_harm_share, choose_thresholds, pr_points,
                                       triage_metrics)
from stages.safety.triage_model import LABELS, OFF, TriageModel


def _fit(kind: str, rows: list[dict], p: TriageParams) -> TriageModel:
    return TriageModel.fit([r["text"] for r in rows], [r["label"] for r in rows], [r["group"] for r in rows],
                           kind=kind, ngram_max=p.ngram_max, min_df=p.min_df, max_features=p.max_features,
                           c=p.c, seed=p.seed, fold_punctuation=p.fold_punctuation)


def load_rows(p: TriageParams, corpus_split: str | Path) -> tuple[dict[str, list[dict]], list[dict], dict]:
    """(authored train/val/test split, extra training rows, counts) — the rows the stage (and
    bench/triage_grid.py) fits and measures on. Extra rows (the corpus' train/val questions and the
    ``triage.train_only`` files) are fitted on in every fold and never scored."""
    authored, dropped = load_authored(p.data_dir)
    split = split_rows(authored, p.seed, p.val_frac, p.test_frac)
    corpus = corpus_rows([Path(corpus_split) / f"{s}.jsonl" for s in ("train", "val")],
                         p.corpus_negatives) if p.corpus_extra else []
    only, only_dropped = train_only_rows(p.train_only, authored, [f for f in [p.independent, *p.held_back] if f])
    counts = {"corpus_extra": len(corpus), "train_only": len(only), "duplicates_dropped": dropped,
              "train_only_duplicates_dropped": only_dropped}
    return split, corpus + only, counts


def oof_proba(kind: str, dev: list[dict], extra: list[dict], p: TriageParams) -> np.ndarray:
    """Out-of-fold class probabilities on ``dev``: each fold scored by a model fitted on the other folds
    (+ the corpus extra rows, which are never scored)."""
    fold = fold_ids(dev, p.seed, p.cv_folds)
    proba = np.zeros((len(dev), len(LABELS)))
    for k in tqdm(range(p.cv_folds), desc=f"triage {kind}: {p.cv_folds}-fold scores", unit="fold"):
        held = [i for i, f in enumerate(fold) if f == k]
        model = _fit(kind, [r for r, f in zip(dev, fold) if f != k] + extra, p)
        proba[held] = model.probabilities([match_text(dev[i]["text"]) for i in held], matched=True)
    return proba


def choose_thresholds_on(model: TriageModel, rows: list[dict], proba: np.ndarray, p: TriageParams) -> None:
    """The (urgency, self-harm) threshold pair with the fewest false alarms at ``triage.val_recall`` for each
    class, and the self-harm routing share, from scores ``proba`` on ``rows`` (OFF, no self-harm threshold,
    is one of the pairs: then it is the single urgency threshold)."""
    labels = [r["label"] for r in rows]
    matched = [match_text(r["text"]) for r in rows]
    scores = 1.0 - proba[:, 0]
    floored = np.array([rule_stands(emergency_hits(m), sc, m, p.rule_floor) for sc, m in zip(scores, matched)],
                       dtype=bool)                                                 # rules after the rule floor
    model.threshold, model.self_harm_threshold = choose_thresholds(scores, proba[:, 2], labels, floored,
                                                                   p.val_recall, OFF)
    model.self_harm_share = choose_self_harm_share(proba, labels)


def measure(triager: Triager, rows: list[dict], proba: np.ndarray | None = None) -> dict:
    """rules-only, classifier-only and the served rules ∪ classifier on ``rows`` (``proba``: scores
    computed elsewhere, e.g. out-of-fold, instead of the triager model's own)."""
    labels, groups = [r["label"] for r in rows], [r["group"] for r in rows]
    res = triager.classify_many([r["text"] for r in rows], proba)
    hits = [emergency_hits(match_text(r["text"])) for r in rows]      # the rules alone (no classifier veto)
    rules = [bool(h) for h in hits]
    model = [r.by_model for r in res]
    rule_labels = [rule_label(h) for h in hits]
    flagged = [r.flagged for r in res]
    out = {"rules_only": triage_metrics(labels, rules, rule_labels, groups),
           "classifier_only": triage_metrics(labels, model, None, groups),
           "triage": triage_metrics(labels, flagged, [r.label for r in res], groups)}
    if triager.pointer_floor < 1:
        # served guidance: the fixed reply, or the model's answer with the 120 pointer (score ≥ pointer_floor)
        m = triage_metrics(labels, [f or triager.wants_pointer(r) for f, r in zip(flagged, res)])
        out["with_pointer"] = {"recall": m["recall"], "false_alarm_rate": m["false_alarm_rate"]}
    if all("origin" in r for r in rows):
        # the served triage per authored file: e.g. writer K's off-topic chat / injection attempts get their
        # own false-alarm figure instead of disappearing into the medical negatives
        files = [r["origin"].rsplit("/", 1)[-1].rsplit(":", 1)[0] for r in rows]
        out["triage_by_file"] = triage_metrics(labels, flagged, None, files)["per_group"]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--corpus-split", default="data/split", help="QA corpus split (train/val used; test never)")
    ap.add_argument("--corpus-clean", default="data/clean/qa.jsonl", help="cleaned corpus (reply answers)")
    ap.add_argument("--out-model", default="models/triage")
    ap.add_argument("--out-split", default="data/triage_split")
    ap.add_argument("--metrics", default="metrics/triage.json")
    ap.add_argument("--plot", default="metrics/plots/triage_pr.json")
    args = ap.parse_args(argv)
    p = load_params(args.params).triage

    split, extra, counts = load_rows(p, args.corpus_split)

    # thresholds (and the candidate) on scores of rows the model did not see: with cv_folds, out-of-fold
    # scores over train+val (every row once; the served model is then fitted on all of train+val); without,
    # the val split (the served model is fitted on train only)
    dev = split["train"] + split["val"]
    tune_name, tune, fit_rows = ("cv", dev, dev + extra) if p.cv_folds else ("val", split["val"], split["train"] + extra)
    candidates, best = {}, None
    for kind in p.candidates:
        model = _fit(kind, fit_rows, p)
        proba = oof_proba(kind, dev, extra, p) if p.cv_folds else model.probabilities(
            [match_text(r["text"]) for r in tune], matched=True)
        choose_thresholds_on(model, tune, proba, p)
        m = measure(Triager(model, rule_floor=p.rule_floor, min_chars=p.min_chars), tune, proba)["triage"]
        candidates[kind] = {"threshold": model.threshold, "self_harm_threshold": model.self_harm_threshold,
                            f"{tune_name}_recall": m["recall"],
                            f"{tune_name}_false_alarm_rate": m["false_alarm_rate"]}
        key = (m["recall"] or 0.0, -(m["false_alarm_rate"] or 0.0))
        if best is None or key > best[0]:
            best = (key, kind, model, proba)
    _, kind, model, tune_proba = best

    qs, answers = corpus_emergency_qa(args.corpus_clean)
    replies = ReplyIndex.build(qs, answers, [model.group(match_text(q)) for q in qs], p.reply_ngram_max)
    triager = Triager(model, replies, p.rule_floor, p.reply_min_similarity, p.min_chars, pointer_floor=p.pointer_floor)

    test = split["test"]
    independent = read_rows(p.independent) if p.independent else []
    test_res = triager.classify_many([r["text"] for r in test])
    steps = [triager.reply(r["text"], t)[1] > 0 for r, t in zip(test, test_res) if t.label == "emergency"]
    metrics = {
        "model": kind, "threshold": model.threshold, "self_harm_threshold": model.self_harm_threshold,
        "self_harm_share": model.self_harm_share, "candidates": candidates,
        "thresholds_on": (f"out-of-fold scores, {p.cv_folds} folds over train+val; served model fitted on "
                          "train+val+extra (corpus, train_only)" if p.cv_folds
                          else "val split; served model fitted on train+extra (corpus, train_only)"),
        "n": {"train": len(split["train"]), "val": len(split["val"]), "test": len(test), **counts,
              "fitted_on": len(fit_rows), "cv_folds": p.cv_folds,
              "reply_answers": len(answers), "independent": len(independent)},
        tune_name: measure(triager, tune, tune_proba), "test": measure(triager, test),
        "reply_steps_rate": round(sum(steps) / len(steps), 4) if steps else None,
    }
    if independent:
        metrics["independent"] = measure(triager, independent)
    if p.held_back:
        # measured only, like the independent set: the harder writers kept out of training (data/triage/README.md)
        held = {Path(f).name: measure(triager, read_rows(f)) for f in p.held_back}
        metrics["held_back"] = {name: m["triage"] for name, m in held.items()}
        if p.pointer_floor < 1:
            metrics["held_back_with_pointer"] = {name: m["with_pointer"] for name, m in held.items()}

    with atomic_dir(args.out_model) as out:
        model.save(out, {"reply_min_similarity": p.reply_min_similarity, "rule_floor": p.rule_floor,
                         "pointer_floor": p.pointer_floor, "injection_gray_floor": p.injection.gray_floor,
                         "min_chars": p.min_chars,
                         "min_recall": p.min_recall,
                         "test_recall": metrics["test"]["triage"]["recall"]})
        replies.save(out)
        metrics["injection"] = fit_injection(p.injection, dev + extra, test, out)
    for name, rows in split.items():
        write_jsonl(Path(args.out_split) / f"{name}.jsonl", rows)
    write_json(args.metrics, metrics)
    scores = np.array([t.score for t in test_res])
    write_json(args.plot, pr_points(scores, [r["label"] for r in test]))
    _report(metrics)
    recall = metrics["test"]["triage"]["recall"]
    if recall < p.min_recall:
        sys.exit(f"triage: test recall {recall} is below triage.min_recall {p.min_recall} "
                 f"(see {args.metrics}); the pre-check would be weaker than allowed")


def _report(m: dict) -> None:
    print(f"triage model {m['model']} threshold {m['threshold']} self-harm threshold {m['self_harm_threshold']}  "
          f"(candidates: {m['candidates']})")
    for part in ("cv", "val", "test", "independent"):
        if part not in m:
            continue
        for system in ("rules_only", "classifier_only", "triage"):
            s = m[part][system]
            pc = s["per_class"]
            print(f"{part:<12}{system:<16} recall {s['recall']}  emergency {pc['emergency']['recall']}  "
                  f"self_harm {pc['self_harm']['recall']}  false alarms {s['false_alarm_rate']}")
    inj = m.get("injection", {})
    parts = [(k, v) for k, v in inj.items() if isinstance(v, dict) and k not in ("held_out", "held_out_by_file", "probe")]
    if "probe" in inj:
        print(f"injection probe: {inj['probe']}")
    for part, systems in parts + list(inj.get("held_out_by_file", {}).items()):
        print(f"injection {part:<12}" + "  ".join(f"{name} recall {s['recall']} false alarms {s['false_alarms']}"
                                                   for name, s in systems.items()))
    for name, s in m.get("held_back", {}).items():
        pc = s["per_class"]
        print(f"held back {name}: recall {s['recall']}  emergency {pc['emergency']['recall']}  "
              f"self_harm {pc['self_harm']['recall']}  false alarms {s['false_alarm_rate']}")
    for part in ("cv", "test", "independent"):
        if "with_pointer" in m.get(part, {}):
            s = m[part]["with_pointer"]
            print(f"{part:<12}fixed reply or 120 pointer: recall {s['recall']}  pointer or reply on negatives {s['false_alarm_rate']}")
    for name, s in m.get("held_back_with_pointer", {}).items():
        print(f"held back {name}: fixed reply or 120 pointer: recall {s['recall']}  on negatives {s['false_alarm_rate']}")


if __name__ == "__main__":
    main()
