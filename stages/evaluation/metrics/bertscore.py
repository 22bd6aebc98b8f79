"""BERTScore P/R/F1 with bert-score on a configurable encoder.

The default encoder is the base model directory itself (``eval.bertscore_model: models/base``) cut to
``eval.bertscore_layers`` layers (bert-score's ``model_type=<dir>, num_layers=N``), so it works
offline; a Chinese BERT directory (or a cached hub id) is better when you have one. bert-score
truncates inputs to the tokenizer's ``model_max_length``, so that must be finite. Scores are raw
(no baseline rescaling) cosine-similarity F1 in 0–1; an empty answer scores 0 (bert-score's own
convention), counted in ``empty``."""
from __future__ import annotations

from dataclasses import dataclass

MAX_SANE_LENGTH = 1_000_000


@dataclass
class BertScores:
    precision: list[float]
    recall: list[float]
    f1: list[float]
    empty: int


class BertScoreEncoder:
    """Loads the encoder once; ``score`` can then be called for base and tuned answers."""

    def __init__(self, model: str, num_layers: int, batch_size: int = 16, device: str | None = None):
        from transformers import AutoConfig

        self.model = str(model)
        try:
            cfg = AutoConfig.from_pretrained(self.model)
        except OSError as err:
            raise OSError(f"eval.bertscore_model: {self.model!r} is neither a local model directory nor a "
                          "cached hub model (runs are offline); build it with `dvc repro base` or point "
                          f"eval.bertscore_model at a local encoder. ({err})") from None
        layers = getattr(cfg, "num_hidden_layers", None)
        if layers is not None and not 1 <= num_layers <= layers:
            raise ValueError(f"eval.bertscore_layers: {num_layers} is outside 1..{layers} for {self.model}")
        from bert_score import BERTScorer

        self.num_layers = num_layers
        self._scorer = BERTScorer(model_type=self.model, num_layers=num_layers, batch_size=batch_size,
                                  device=device or "cpu", use_fast_tokenizer=True)
        max_len = self._scorer._tokenizer.model_max_length
        if not max_len or max_len > MAX_SANE_LENGTH:
            raise ValueError(f"eval.bertscore_model: tokenizer of {self.model} has no finite model_max_length "
                             f"({max_len}); set it in tokenizer_config.json")

    def score(self, predictions: list[str], references: list[str], progress: bool = False) -> BertScores:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions vs {len(references)} references")
        keep = [i for i, (p, r) in enumerate(zip(predictions, references)) if p.strip() and r.strip()]
        p = [0.0] * len(predictions)
        r = [0.0] * len(predictions)
        f = [0.0] * len(predictions)
        if keep:
            P, R, F = self._scorer.score([predictions[i] for i in keep], [references[i] for i in keep],
                                         verbose=progress)
            for j, i in enumerate(keep):
                p[i], r[i], f[i] = float(P[j]), float(R[j]), float(F[j])
        return BertScores(p, r, f, len(predictions) - len(keep))
