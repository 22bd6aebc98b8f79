"""Would a probe on the base model's hidden states help the emergency / self-harm triage, as it helped the injection
pre-check (stages/TRIAGE.md, *Session 27*: measured, not adopted)?

The served classifier (character n-gram LR, models/triage) is compared with the mean of its class probabilities and
those of a 3-class standardised logistic regression on the injection probe's encoder features (``triage.injection.probe``:
the mean final hidden state after 12 of 24 layers of models/base) — fitted on the same rows and folds, thresholds by the
stage's own rule (``triage.val_recall`` per class, out-of-fold). Printed per variant: the out-of-fold recall and false
alarms, recall / false alarms (fixed reply, and fixed reply or 120 pointer) on the independent and every held-back
writer, pooled counts over them, and the real questions of ../shared/data the fixed reply would answer (CSV, ShareGPT).

    python bench/triage_probe.py [--c 0.01 0.1 1] [--weight 0.5] [--features artifacts/bench/triage_probe_features.npz]

Needs models/base, models/triage and the corpus split (``dvc repro triage``). Computing the features of ~16,800 texts
(every triage row and real question) takes ~20 min on 2 cores; they are cached in ``--features`` (keyed by text) so
a second run takes ~3 min. Without ../shared/data the real-question columns are left out."""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def real_questions() -> dict[str, list[str]]:
    csv_path, sharegpt = DATA / "cmd_internal_medicine.gb18030.csv", DATA / "medicalgpt_sft_1k.sharegpt.jsonl"
    if not csv_path.is_file() or not sharegpt.is_file():
        print(f"real questions skipped: {DATA} is absent")
        return {}
    import pandas as pd

    df = pd.read_csv(csv_path, encoding="gb18030").fillna("")
    return {"csv": [f"{t} {a}".strip() for t, a in zip(df["title"], df["ask"])],
            "sharegpt": [json.loads(line)["conversations"][0]["value"]
                         for line in sharegpt.open(encoding="utf-8") if line.strip()]}


class Features:
    """Encoder features by text, cached on disk (the encoder is the injection probe's)."""

    def __init__(self, probe_params, path: Path):
        self.p, self.path, self.enc = probe_params, path, None
        self.by_key: dict[str, np.ndarray] = {}
        if path.is_file():
            z = np.load(path)
            self.by_key = dict(zip(z["keys"].tolist(), z["x"]))

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def of(self, texts: list[str]) -> np.ndarray:
        todo = sorted({t for t in texts if self.key(t) not in self.by_key}, key=len)
        if todo:
            from stages.safety.injection_probe import Encoder

            if self.enc is None:
                self.enc = Encoder(self.p.encoder, self.p.layer, self.p.max_tokens, self.p.batch_size)
            for start in range(0, len(todo), 2000):           # saved every 2,000 texts: an interrupted run resumes
                chunk = todo[start:start + 2000]
                self.by_key.update(zip(map(self.key, chunk), self.enc.embed(chunk, progress=f"features {start}+")))
                self.path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(self.path, keys=np.array(list(self.by_key)), x=np.stack(list(self.by_key.values())))
        return np.stack([self.by_key[self.key(t)] for t in texts])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--corpus-split", default="data/split")
    ap.add_argument("--triage-model", default="models/triage")
    ap.add_argument("--c", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    ap.add_argument("--weight", type=float, default=0.5, help="the probe's share of the mean (the plan fixed 0.5)")
    ap.add_argument("--features", default="artifacts/bench/triage_probe_features.npz")
    args = ap.parse_args(argv)

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from stages.common.config import load_params
    from stages.safety.triage import Triager, load_triager
    from stages.safety.triage_data import fold_ids, read_rows
    from stages.safety.triage_model import LABELS
    from stages.triage import choose_thresholds_on, load_rows, measure, oof_proba

    p = load_params(args.params).triage
    if not p.cv_folds:
        sys.exit(f"{args.params}: triage.cv_folds is 0; this bench compares out-of-fold scores (set it ≥ 2)")
    split, extra, _ = load_rows(p, args.corpus_split)
    dev = split["train"] + split["val"]
    sets = {"independent": read_rows(p.independent)} if p.independent else {}
    sets.update({Path(f).stem: read_rows(f) for f in p.held_back})
    real = real_questions()
    feats = Features(p.injection.probe, REPO / args.features)
    text = lambda rows: [r["text"] for r in rows]                                      # noqa: E731
    feats.of(text(dev) + text(extra) + [t for rows in sets.values() for t in text(rows)]
             + [q for qs in real.values() for q in qs])                              # one pass, cached

    char = load_triager(args.triage_model).model
    char_oof = oof_proba("char_lr", dev, extra, p)

    def report(name: str, oof: np.ndarray, proba) -> None:
        model = copy.deepcopy(char)
        choose_thresholds_on(model, dev, oof, p)
        triager = Triager(model, rule_floor=p.rule_floor, min_chars=p.min_chars, pointer_floor=p.pointer_floor)
        cv = measure(triager, dev, oof)["triage"]
        line = [f"{name}: thresholds {model.threshold:.4f}/{model.self_harm_threshold:.4f}; "
                f"out-of-fold recall {cv['recall']} false alarms {cv['false_alarm_rate']}"]
        n = dict.fromkeys(("pos", "hit", "hit_ptr", "neg", "fa", "fa_ptr"), 0)
        for set_name, rows in sets.items():
            m = measure(triager, rows, proba(text(rows)))
            pos = sum(r["label"] != "none" for r in rows)
            neg = len(rows) - pos
            t, w = m["triage"], m["with_pointer"]
            n["pos"] += pos
            n["neg"] += neg
            n["hit"] += round(t["recall"] * pos)
            n["hit_ptr"] += round(w["recall"] * pos)
            n["fa"] += round((t["false_alarm_rate"] or 0) * neg)
            n["fa_ptr"] += round((w["false_alarm_rate"] or 0) * neg)
            line.append(f"  {set_name}: recall {t['recall']} / with pointer {w['recall']}; false alarms "
                        f"{t['false_alarm_rate']} / with pointer {w['false_alarm_rate']}")
        line.append(f"  pooled: recall {n['hit']}/{n['pos']} (with pointer {n['hit_ptr']}); false alarms "
                    f"{n['fa']}/{n['neg']} (with pointer {n['fa_ptr']})")
        for set_name, qs in real.items():
            res = triager.classify_many(qs, proba(qs))
            line.append(f"  real {set_name}: fixed reply {sum(r.flagged for r in res)}/{len(qs)} "
                        f"(self-harm {sum(r.label == 'self_harm' for r in res)}), pointer "
                        f"{sum(triager.wants_pointer(r) for r in res)}")
        print("\n".join(line), flush=True)

    report("character classifier (served)", char_oof, lambda texts: char.probabilities(texts))
    fold = fold_ids(dev, p.seed, p.cv_folds)
    x_dev, x_extra = feats.of(text(dev)), feats.of(text(extra))
    y_dev = np.array([LABELS.index(r["label"]) for r in dev])
    y_extra = np.array([LABELS.index(r["label"]) for r in extra])
    w = args.weight
    for c in args.c:
        def new():
            return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, class_weight="balanced",
                                                                      random_state=p.seed))
        probe_oof = np.zeros_like(char_oof)
        for k in range(p.cv_folds):
            tr = [i for i, f in enumerate(fold) if f != k]
            te = [i for i, f in enumerate(fold) if f == k]
            probe_oof[te] = new().fit(np.vstack([x_dev[tr], x_extra]),
                                      np.concatenate([y_dev[tr], y_extra])).predict_proba(x_dev[te])
        probe = new().fit(np.vstack([x_dev, x_extra]), np.concatenate([y_dev, y_extra]))
        report(f"mean(character, probe C={c}, weight {w})", (1 - w) * char_oof + w * probe_oof,
               lambda texts: (1 - w) * char.probabilities(texts) + w * probe.predict_proba(feats.of(texts)))


if __name__ == "__main__":
    main()
