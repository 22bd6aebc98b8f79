"""The learned half of the injection pre-check: a character n-gram TF-IDF logistic regression (injection vs
not), fitted by the triage stage next to the triage model (``models/triage/injection.joblib``) and used by
``Triager.is_injection`` together with the rules of stages/safety/injection.py and the hidden-state probe of
stages/safety/injection_probe.py (any one flags).

Training rows (``triage.injection`` in params.yaml): the team's labelled injection sets (``train``: attacks and
look-alike benign questions), and the triage stage's own training rows — writer K's prompt-injection rows as
attacks, every other message (patients, relatives, chat, the corpus' train/val questions) as benign. The threshold is chosen on out-of-fold
probabilities: the lowest (most recall) whose out-of-fold false-alarm rate on the benign rows stays within
``max_false_alarms``. ``held_out`` (other writers' sets) is only measured. Fitting is deterministic."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.common.jsonio import read_jsonl
from stages.safety.normalize import match_text

MODEL_FILE = "injection.joblib"
META_FILE = "injection.json"
LABELS = ("benign", "injection")


@dataclass
class InjectionModel:
    vectorizer: object
    classifier: object
    threshold: float

    @classmethod
    def fit(cls, texts: list[str], labels: list[int], *, ngram_max: int, min_df: int, c: float,
            seed: int) -> "InjectionModel":
        from sklearn.linear_model import LogisticRegression

        from stages.safety.triage_model import make_vectorizer

        vec = make_vectorizer(ngram_max, min_df, 0)
        x = vec.fit_transform([match_text(t) for t in texts])
        clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", solver="lbfgs", random_state=seed)
        return cls(vec, clf.fit(x, np.asarray(labels)), 0.5)

    def proba(self, texts: list[str]) -> np.ndarray:
        """P(injection) per text."""
        return self.classifier.predict_proba(self.vectorizer.transform([match_text(t) for t in texts]))[:, 1]

    def save(self, out_dir: Path, meta: dict) -> None:
        from stages.safety.triage_model import write_artifacts

        write_artifacts(out_dir, MODEL_FILE, {"vectorizer": self.vectorizer, "classifier": self.classifier},
                        META_FILE, {**meta, "threshold": self.threshold})

    @classmethod
    def load(cls, model_dir: str | Path) -> "InjectionModel":
        from stages.safety.triage_model import read_artifacts

        obj, meta = read_artifacts(model_dir, MODEL_FILE, META_FILE, "injection")
        return cls(obj["vectorizer"], obj["classifier"], float(meta["threshold"]))


def read_labelled(path: str | Path) -> list[dict]:
    """``{"text", "label": "injection"|"benign", "category"}`` rows; a bad row names the file and line."""
    rows = []
    for i, r in enumerate(read_jsonl(path), 1):
        if not isinstance(r.get("text"), str) or not r["text"].strip() or r.get("label") not in LABELS:
            raise ValueError(f"{path}:{i}: need a non-empty 'text' and 'label' in {LABELS}")
        rows.append(r)
    return rows


def training_rows(files: list[str], triage_rows: list[dict]) -> list[dict]:
    """Attacks and benign rows with a ``source`` for per-source figures, in a fixed order: the labelled
    injection files, then triage rows (its prompt-injection condition = attack; the rest — patients' messages,
    chat, the corpus questions — benign)."""
    rows = [{**r, "source": Path(f).stem} for f in files for r in read_labelled(f)]
    rows += [{"text": r["text"], "label": "injection" if r.get("condition") == "prompt_injection" else "benign",
              "source": "triage:" + str(r.get("condition") == "prompt_injection").lower()} for r in triage_rows]
    return rows


def folds_of(rows: list[dict], folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified (train, test) index pairs shared by the classifier and the probe."""
    from sklearn.model_selection import StratifiedKFold

    y = np.array([r["label"] == "injection" for r in rows], dtype=int)
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def oof_proba(rows: list[dict], folds: list, **fit_kw) -> np.ndarray:
    y = np.array([r["label"] == "injection" for r in rows], dtype=int)
    out = np.zeros(len(rows))
    for tr, te in folds:
        m = InjectionModel.fit([rows[i]["text"] for i in tr], y[tr].tolist(), **fit_kw)
        out[te] = m.proba([rows[i]["text"] for i in te])
    return out


def choose_threshold(proba: np.ndarray, is_attack: np.ndarray, max_false_alarms: float) -> float:
    """The lowest threshold whose false-alarm rate on the benign rows is ≤ ``max_false_alarms``."""
    benign = np.sort(proba[~is_attack])[::-1]
    allowed = int(np.floor(max_false_alarms * len(benign)))          # benign rows that may score above it
    return float(benign[allowed] + 1e-9) if allowed < len(benign) else 0.0


def measure(flags: np.ndarray, rows: list[dict]) -> dict:
    """Recall on the attacks, false alarms on the benign rows, per category (or source)."""
    att = np.array([r["label"] == "injection" for r in rows])
    out = {"n": len(rows), "recall": float(flags[att].mean()) if att.any() else None,
           "false_alarms": float(flags[~att].mean()) if (~att).any() else None, "by_category": {}}
    for key in sorted({r.get("category") or r.get("source", "") for r in rows}):
        idx = np.array([(r.get("category") or r.get("source", "")) == key for r in rows])
        out["by_category"][key] = {"n": int(idx.sum()), "flagged": int(flags[idx].sum())}
    return out


def fit_injection(p, triage_fit_rows: list[dict], triage_test_rows: list[dict], out_dir: Path) -> dict:
    """Fit, choose the thresholds out-of-fold, save into ``out_dir`` and return the metrics
    (``p``: ``TriageParams.injection``): the character classifier and, unless ``probe.layer`` is 0, the
    hidden-state probe (stages/safety/injection_probe.py) on the same rows and folds. Figures: out-of-fold on the
    fitted rows, the triage test split (never fitted here either) and the held-out writers — for the rules, each
    learned half alone and what is served (rules ∪ classifier ∪ probe)."""
    from stages.safety.injection import detect_injection

    fit_kw = {"ngram_max": p.ngram_max, "min_df": p.min_df, "c": p.c, "seed": p.seed}
    rows = training_rows(p.train, triage_fit_rows)
    is_attack = np.array([r["label"] == "injection" for r in rows])
    folds = folds_of(rows, p.folds, p.seed)
    oof = oof_proba(rows, folds, **fit_kw)
    model = InjectionModel.fit([r["text"] for r in rows], is_attack.astype(int).tolist(), **fit_kw)
    model.threshold = choose_threshold(oof, is_attack, p.max_false_alarms)
    model.save(out_dir, {"max_false_alarms": p.max_false_alarms, "fitted_on": len(rows)})
    probe, probe_oof = None, None
    if p.probe.layer:
        from stages.safety.injection_probe import fit_probe

        probe, probe_oof = fit_probe(p, [r["text"] for r in rows], is_attack, folds)
        probe.save(out_dir)

    def systems(rs: list[dict], proba: np.ndarray, probe_proba: np.ndarray | None) -> dict:
        rules = np.array([detect_injection(r["text"]) for r in rs], dtype=bool)
        clf = proba >= model.threshold
        out = {"rules_only": measure(rules, rs), "classifier_only": measure(clf, rs)}
        served = rules | clf
        if probe_proba is not None:
            pr = probe_proba >= probe.threshold
            out["probe_only"] = measure(pr, rs)
            out["rules_and_classifier"] = measure(served, rs)
            served = served | pr
        return {**out, "served": measure(served, rs)}

    def score(rs: list[dict]) -> dict:
        texts = [r["text"] for r in rs]
        return systems(rs, model.proba(texts), probe.proba(texts) if probe else None)

    out = {"threshold": model.threshold, "max_false_alarms": p.max_false_alarms, "fitted_on": len(rows),
           "attacks_fitted": int(is_attack.sum()), "cv": systems(rows, oof, probe_oof)}
    if probe:
        out["probe"] = {k: probe.meta[k] for k in ("encoder", "layer", "max_tokens", "c")} | {"threshold": probe.threshold}
    if triage_test_rows:
        out["triage_test"] = score(training_rows([], triage_test_rows))
    for i, path in enumerate(p.held_out):            # "held_out": the first writer's set (Q); every set by file
        res = score(read_labelled(path))
        out.setdefault("held_out_by_file", {})[Path(path).name] = res
        if i == 0:
            out["held_out"] = res
    return out
