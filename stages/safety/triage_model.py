"""The learned half of triage: a character n-gram TF-IDF text classifier (none / emergency / self_harm)
plus a condition-group classifier, trained offline with scikit-learn and saved with joblib.

Everything is fitted on ``match_text`` (simplified, width-folded) so traditional characters and full-width forms look
like the training data; with ``fold_punctuation`` (the default since session 23) the classifier reads it through
``classifier_text``, so "？？？" or "！！！" after an emergency is not evidence against it. Fitting is deterministic (fixed
solver, seed, input order), so the same data gives byte-identical files."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.safety.normalize import match_text

LABELS = ("none", "emergency", "self_harm")
MODEL_FILE = "classifier.joblib"
META_FILE = "meta.json"
KINDS = ("char_lr", "char_nb")     # candidates compared by measurement in the triage stage
OFF = 1.01                         # a probability threshold no row reaches
# punctuation, spaces and symbols (emoji, ~) ending a message: "胸口疼？？？", "喘不上气!!!😭😭"
_TAIL = re.compile(r"[\s!-/:-@\[-`{-~，。、！？；：…—·“”‘’（）【】《》〈〉「」『』\U0001F000-\U0001FAFF\u2600-\u27BF]+$")
_CHAR_RUN = re.compile(r"(\D)\1{2,}")          # three or more of the same non-digit character
_PUNCT_RUN = re.compile(r"([!-/:-@\[-`{-~，。、！？；：…—·])\1+")   # the same punctuation mark repeated


def classifier_text(matched: str) -> str:
    """What the n-gram classifier reads of a ``match_text``: without what ends the message (punctuation, spaces,
    emoji), with a repeated punctuation mark once and three or more of the same non-digit character once
    ("胸口疼？？？" → "胸口疼", "快点啊啊啊，，" → "快点啊"). Session 23: a trailing "？" made 16 and "？？？" 49 of 950
    held-out emergencies look like ordinary questions (bench/triage_robustness.py). Punctuation inside the message
    stays: folding all of it raised out-of-fold false alarms 0.047 → 0.053. The rules read ``match_text``."""
    return _TAIL.sub("", _PUNCT_RUN.sub(r"\1", _CHAR_RUN.sub(r"\1", matched)))


def _reads(matched: list[str], fold_punctuation: bool) -> list[str]:
    """The texts the vectoriser sees, in fitting and at inference alike."""
    return [classifier_text(m) for m in matched] if fold_punctuation else list(matched)


def make_vectorizer(ngram_max: int, min_df: int, max_features: int):
    from sklearn.feature_extraction.text import TfidfVectorizer

    # inputs are already match_text: no lower-casing or accent stripping here; float32 halves the model
    return TfidfVectorizer(analyzer="char", ngram_range=(1, ngram_max), min_df=min_df, sublinear_tf=True,
                           lowercase=False, max_features=max_features or None, dtype=np.float32)


def make_classifier(kind: str, c: float, seed: int):
    if kind == "char_lr":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, max_iter=2000, class_weight="balanced", solver="lbfgs", random_state=seed)
    if kind == "char_nb":
        from sklearn.naive_bayes import ComplementNB

        return ComplementNB(alpha=1.0 / c)
    raise ValueError(f"triage.model: unknown kind {kind!r} (one of {', '.join(KINDS)})")


@dataclass
class TriageModel:
    """Fitted vectoriser + label classifier + group classifier + the threshold chosen on validation."""
    vectorizer: object
    classifier: object
    group_classifier: object | None
    threshold: float
    kind: str
    self_harm_share: float = 0.5      # flagged → self_harm when P(self_harm) / (P(emergency) + P(self_harm)) ≥ this
    self_harm_threshold: float = OFF  # also flagged (as self_harm) when P(self_harm) ≥ this; OFF = never
    fold_punctuation: bool = False    # the classifier reads ``classifier_text`` (models saved before session 23: False)

    def flags(self, proba: np.ndarray) -> np.ndarray:
        """Rows the classifier flags: urgency 1 − P(none) ≥ ``threshold``, or P(self_harm) ≥
        ``self_harm_threshold`` (self-harm has its own threshold, chosen on val for its own recall, so the
        rarer, more indirectly worded class does not drag the threshold — and the false alarms — of all)."""
        proba = np.atleast_2d(proba)
        return ((1.0 - proba[:, 0]) >= self.threshold) | (proba[:, 2] >= self.self_harm_threshold)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, texts: list[str], labels: list[str], groups: list[str | None], *, kind: str, ngram_max: int,
            min_df: int, max_features: int, c: float, seed: int,
            fold_punctuation: bool = True) -> "TriageModel":
        unknown = sorted(set(labels) - set(LABELS))
        if unknown:
            raise ValueError(f"unknown triage labels {unknown} (expected {LABELS})")
        vec = make_vectorizer(ngram_max, min_df, max_features)
        x = vec.fit_transform(_reads([match_text(t) for t in texts], fold_punctuation))
        clf = make_classifier(kind, c, seed).fit(x, np.array([LABELS.index(y) for y in labels]))
        # condition group of an emergency: learned on the emergency examples that carry one (self_harm is its
        # own group by label)
        pos = [i for i, (y, g) in enumerate(zip(labels, groups)) if y == "emergency" and g]
        gclf = None
        if len({groups[i] for i in pos}) >= 2:
            from sklearn.linear_model import LogisticRegression

            gclf = LogisticRegression(C=c, max_iter=2000, solver="lbfgs", random_state=seed)
            gclf.fit(x[pos], np.array([groups[i] for i in pos]))
        return cls(vec, clf, gclf, threshold=0.5, kind=kind, fold_punctuation=fold_punctuation)

    # ------------------------------------------------------------------ inference
    def features(self, matched: list[str]):
        return self.vectorizer.transform(_reads(matched, self.fold_punctuation))

    def probabilities(self, texts: list[str], matched: bool = False) -> np.ndarray:
        """(n, 3) class probabilities in ``LABELS`` order."""
        x = self.features(list(texts) if matched else [match_text(t) for t in texts])
        proba = np.zeros((x.shape[0], len(LABELS)), dtype=np.float64)
        proba[:, self.classifier.classes_] = self.classifier.predict_proba(x)
        return proba

    def urgency(self, texts: list[str], matched: bool = False) -> np.ndarray:
        """Score the threshold applies to: P(emergency) + P(self_harm) = 1 − P(none)."""
        return 1.0 - self.probabilities(texts, matched)[:, 0]

    def group(self, matched_text: str) -> str | None:
        if self.group_classifier is None:
            return None
        return str(self.group_classifier.predict(self.features([matched_text]))[0])

    # ------------------------------------------------------------------ files
    def save(self, out_dir: Path, meta: dict) -> None:
        write_artifacts(out_dir, MODEL_FILE, {"vectorizer": self.vectorizer, "classifier": self.classifier,
                                              "group_classifier": self.group_classifier, "kind": self.kind,
                                              "fold_punctuation": self.fold_punctuation},
                        META_FILE, {**meta, "threshold": self.threshold, "kind": self.kind, "labels": list(LABELS),
                                    "self_harm_share": self.self_harm_share,
                                    "self_harm_threshold": self.self_harm_threshold})

    @classmethod
    def load(cls, model_dir: str | Path) -> "TriageModel":
        obj, meta = read_artifacts(model_dir, MODEL_FILE, META_FILE, "triage")
        return cls(obj["vectorizer"], obj["classifier"], obj["group_classifier"], float(meta["threshold"]),
                   obj["kind"], float(meta["self_harm_share"]), float(meta["self_harm_threshold"]),
                   bool(obj.get("fold_punctuation", False)))


# --- files of the models the triage stage writes (this model, stages/safety/injection_model.py) ---------------
def write_artifacts(out_dir: Path, model_file: str, obj: dict, meta_file: str, meta: dict) -> None:
    """joblib model + sorted JSON meta (byte-identical for the same content)."""
    import joblib

    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(obj, out_dir / model_file)
    (out_dir / meta_file).write_text(json.dumps(meta, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                     encoding="utf-8")


def read_artifacts(model_dir: str | Path, model_file: str, meta_file: str, what: str) -> tuple[dict, dict]:
    """(joblib object, meta); a missing file names the command that builds it."""
    import joblib

    d = Path(model_dir)
    missing = [f for f in (model_file, meta_file) if not (d / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{what} model {d}: missing {', '.join(missing)} — run `dvc repro triage` "
                                "(python -m stages.triage) to build it")
    return joblib.load(d / model_file), json.loads((d / meta_file).read_text(encoding="utf-8"))
