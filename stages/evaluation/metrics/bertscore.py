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
        self.batch_size = batch_size
        self._scorer = BERTScorer(model_type=self.model, num_layers=num_layers, batch_size=batch_size,
                                  device=device or "cpu", use_fast_tokenizer=True)
        max_len = self._scorer._tokenizer.model_max_length
        if not max_len or max_len > MAX_SANE_LENGTH:
            raise ValueError(f"eval.bertscore_model: tokenizer of {self.model} has no finite model_max_length "
                             f"({max_len}); set it in tokenizer_config.json")

    def score(self, predictions: list[str], references: list[str], progress: bool = False) -> BertScores:
        return self.score_many({"_": predictions}, references, progress)["_"]

    def score_many(self, predictions: dict[str, list[str]], references: list[str],
                   progress: bool = False) -> dict[str, BertScores]:
        """Score several models' answers against one reference list. Each reference is encoded once for all
        models (bert-score encodes the distinct sentences of a call), and calls are made on chunks of
        references of similar length: bert-score orders a call's sentences by *space-separated words* — one
        "word" for most Chinese text — so within one big call the batches mix short and long answers and
        most of the work is padding. Per-sentence embeddings do not depend on the batch, so the scores are the
        ones a single call gives (tests/test_metrics.py)."""
        n = len(references)
        for name, preds in predictions.items():
            if len(preds) != n:
                raise ValueError(f"{name}: {len(preds)} predictions vs {n} references")
        keep = {m: {i for i in range(n) if preds[i].strip() and references[i].strip()}
                for m, preds in predictions.items()}
        out = {m: BertScores([0.0] * n, [0.0] * n, [0.0] * n, n - len(keep[m])) for m in predictions}
        kept = set().union(*keep.values())
        width = {i: max([len(references[i])] + [len(predictions[m][i]) for m in predictions if i in keep[m]])
                 for i in kept}
        order = sorted(kept, key=lambda i: (width[i], i))
        chunk = 2 * self.batch_size
        for start in range(0, len(order), chunk):
            refs_here = set(order[start:start + chunk])
            pairs = [(m, i) for m in predictions for i in sorted(keep[m] & refs_here)]
            P, R, F = self._scorer.score([predictions[m][i] for m, i in pairs], [references[i] for _, i in pairs],
                                         verbose=progress)
            for j, (m, i) in enumerate(pairs):
                out[m].precision[i], out[m].recall[i], out[m].f1[i] = float(P[j]), float(R[j]), float(F[j])
        return out
