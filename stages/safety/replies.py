"""Fixed replies for triage-flagged questions — never model-generated.

- emergency: the generic 120 / 急诊 guidance first; then, when the question is close enough
  (char n-gram TF-IDF cosine ≥ ``triage.reply_min_similarity``) to an authored emergency question of
  the corpus (data/clean, tier ``emergency``) *of the same condition group*, that answer's vetted
  "while you wait" steps;
- self_harm: a reply that takes the person seriously, with 120 and psychological crisis hotlines."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.safety.normalize import match_text
from stages.safety.rules import EMERGENCY_REPLY, SELF_HARM_REPLY

REPLIES_FILE = "replies.joblib"
WAIT_HEADER = "\n\n等待救援时，针对您描述的情况可以这样做（来自本院审核过的急救指引）：\n"


@dataclass
class ReplyIndex:
    """Authored emergency questions (vectorised) with their answers and predicted condition groups."""
    vectorizer: object
    matrix: object            # L2-normalised TF-IDF rows of the corpus questions
    answers: list[str]
    groups: list[str | None]

    @classmethod
    def build(cls, questions: list[str], answers: list[str], groups: list[str | None],
              ngram_max: int) -> "ReplyIndex":
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, ngram_max), sublinear_tf=True, lowercase=False,
                              dtype=np.float32)
        matrix = vec.fit_transform([match_text(q) for q in questions])
        return cls(vec, matrix, list(answers), list(groups))

    def closest(self, matched_text: str, group: str | None) -> tuple[int | None, float]:
        """Index and cosine of the most similar corpus question in ``group`` (any group if None)."""
        if not self.answers:
            return None, 0.0
        sims = (self.matrix @ self.vectorizer.transform([matched_text]).T).toarray().ravel()
        if group is not None:
            sims = np.where(np.array([g == group for g in self.groups]), sims, -1.0)
        i = int(np.argmax(sims))
        return (i, float(sims[i])) if sims[i] >= 0 else (None, 0.0)

    def save(self, out_dir: Path) -> None:
        import joblib

        joblib.dump({"vectorizer": self.vectorizer, "matrix": self.matrix, "answers": self.answers,
                     "groups": self.groups}, Path(out_dir) / REPLIES_FILE)

    @classmethod
    def load(cls, model_dir: str | Path) -> "ReplyIndex":
        import joblib

        obj = joblib.load(Path(model_dir) / REPLIES_FILE)
        return cls(obj["vectorizer"], obj["matrix"], obj["answers"], obj["groups"])


def emergency_reply(matched_text: str, group: str | None, index: ReplyIndex | None,
                    min_similarity: float) -> tuple[str, float]:
    """(reply, similarity of the appended authored answer; 0.0 when the generic reply is used)."""
    if index is None:
        return EMERGENCY_REPLY, 0.0
    i, sim = index.closest(matched_text, group)
    if i is None or sim < min_similarity:
        return EMERGENCY_REPLY, 0.0
    return EMERGENCY_REPLY + WAIT_HEADER + index.answers[i].strip(), sim
