"""One model over the evaluation examples: greedy answers (stages.model.generate, the code path serve uses)
and the reference answers' token NLL (stages.evaluation.metrics.perplexity). predict_base runs it for the base
model, evaluate for the tuned one; ``settings`` records what the predictions depend on so evaluate
can refuse base predictions made with different settings."""
from __future__ import annotations

import hashlib
import time

from stages.common.config import Params
from stages.model.generate import Decoding, generate_answers
from stages.evaluation.metrics.perplexity import answer_nll


def settings(params: Params) -> dict:
    """Everything besides the model and the examples that changes a prediction row."""
    return {**Decoding.from_params(params.generation).describe(), "ppl_max_len": params.eval.ppl_max_len,
            "system_sha1": hashlib.sha1(params.prompt.system.encode("utf-8")).hexdigest()[:12]}


def predict(model, tokenizer, examples: list[dict], params: Params, label: str, progress: bool = True) -> dict:
    """Returns ``{"rows": [...], "generate_s", "nll_s", "new_tokens"}``; rows follow ``examples``."""
    ev, system = params.eval, params.prompt.system
    t0 = time.perf_counter()
    gen = generate_answers(model, tokenizer, [e["question"] for e in examples], system, batch_size=ev.batch_size,
                           progress=progress, decoding=Decoding.from_params(params.generation))
    t1 = time.perf_counter()
    nll = answer_nll(model, tokenizer, [(e["question"], e["answer"]) for e in examples], system,
                     ev.ppl_max_len, ev.batch_size, progress, desc=f"{label} ref-nll")
    t2 = time.perf_counter()
    rows = []
    for e, g, n in zip(examples, gen, nll):
        rows.append({"id": e["id"], "question": e["question"], "answer": g["answer"],
                     "new_tokens": g["new_tokens"], "hit_cap": g["hit_cap"], "ref_nll": n["nll"],
                     "ref_tokens": n["tokens"], "ref_truncated": n["truncated"]})
    return {"rows": rows, "generate_s": t1 - t0, "nll_s": t2 - t1,
            "new_tokens": sum(g["new_tokens"] for g in gen)}
