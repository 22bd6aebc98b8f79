"""Typed mirror of params.yaml. Unknown keys and bad values fail before any work,
with the key path in the message (e.g. ``params.yaml: split.test_frac: ...``)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PARAMS_FILE = "params.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class DataParams(_Section):
    sources: list[str] = Field(default_factory=lambda: ["data/raw", "data/feedback"], min_length=1)
    csv_columns: dict[str, Union[str, list[str]]] = Field(
        default_factory=lambda: {"question": ["title", "ask"], "answer": "answer", "category": "department"})
    source_names: dict[str, str] = Field(default_factory=dict)

    @field_validator("csv_columns")
    @classmethod
    def _need_qa(cls, v):
        missing = {"question", "answer"} - set(v)
        if missing:
            raise ValueError(f"csv_columns must map {sorted(missing)}")
        unknown = set(v) - {"question", "answer", "category", "difficulty", "source"}
        if unknown:
            raise ValueError(f"csv_columns has unknown fields {sorted(unknown)}")
        return v


class CleanParams(_Section):
    min_answer_chars: int = Field(10, ge=1)
    max_answer_chars: int = Field(1000, ge=1)
    min_question_chars: int = Field(4, ge=1)
    # duplicates (stages/data/dupkeys.py): same question + similar answer, or same answer + similar
    # question; similarity via MinHash-LSH bands of `dedup_rows` hashes on datatrove
    near_dup: bool = True                     # false: exact duplicates only
    dedup_rows: int = Field(4, ge=1)          # MinHashes per LSH band
    answer_bands: int = Field(16, ge=1)       # bands keyed on the question (answer-focused family)
    question_bands: int = Field(8, ge=1)      # bands keyed on the answer
    answer_shingle_chars: int = Field(4, ge=1)
    question_shingle_chars: int = Field(3, ge=1)
    workers: int = Field(0, ge=0)             # processes for per-record work and dedup; 0 = all cores
    shard_rows: int = Field(50_000, ge=1)     # candidate rows per datatrove task (bounds bucket-sort memory)
    work_dir: str = ""                        # temporary signatures/buckets; "" = system temp folder
    mask_pii: bool = True
    strip_boilerplate: bool = True
    terms_file: str = "data/terms.tsv"
    strict: bool = False
    verdicts: str = "data/review/verdicts.jsonl"   # expert verdicts (stages/humanloop/verdicts.py); "" = none

    @model_validator(mode="after")
    def _lengths(self):
        if self.max_answer_chars < self.min_answer_chars:
            raise ValueError("max_answer_chars must be >= min_answer_chars")
        return self


class SplitParams(_Section):
    seed: int = 42
    val_frac: float = Field(0.1, ge=0, lt=1)
    test_frac: float = Field(0.1, ge=0, lt=1)
    stratify_by: list[Literal["difficulty", "category"]] = Field(default_factory=lambda: ["difficulty", "category"])
    max_train: int = Field(0, ge=0)
    group_threshold: float = Field(0.6, gt=0, le=1)

    @model_validator(mode="after")
    def _fracs(self):
        if self.val_frac + self.test_frac >= 1:
            raise ValueError("val_frac + test_frac must be < 1")
        return self


class ReviewParams(_Section):
    """Expert review rounds (python -m stages.review; stages/humanloop/README.md)."""
    round: str = Field("r1", pattern=r"^[A-Za-z0-9_-]+$")
    sample_size: int = Field(120, ge=1)
    seed: int = 13
    reviewers: list[str] = Field(default_factory=lambda: ["reviewer_a", "reviewer_b"], min_length=2)
    source: str = "data/clean/qa.jsonl"
    sheets_dir: str = "data/review/sheets"
    verdicts: str = "data/review/verdicts.jsonl"
    metrics: str = "metrics/review.json"
    unresolved: Literal["strictest", "pending"] = "strictest"

    @field_validator("reviewers")
    @classmethod
    def _names(cls, v):
        import re

        bad = [n for n in v if not re.fullmatch(r"[A-Za-z0-9_-]+", n)]
        if bad:
            raise ValueError(f"reviewer names are file names: letters, digits, _ and - only, got {bad}")
        if len(set(v)) != len(v):
            raise ValueError("reviewer names must be distinct")
        return v


class ModelParams(_Section):
    base: str = "bundled:qwen2.5-coder-0.5b-instruct"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_shard_size: str = "2GB"
    trust_remote_code: bool = False


class PromptParams(_Section):
    system: str = Field(min_length=1)


class LoraParams(_Section):
    r: int = Field(8, ge=1)
    alpha: float = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1)
    layers: Union[str, list[int]] = "all"
    use_dora: bool = False
    use_rslora: bool = False

    @field_validator("layers")
    @classmethod
    def _layers(cls, v):
        if isinstance(v, str) and v != "all":
            if not v.startswith("last:") or not v[5:].isdigit() or int(v[5:]) < 1:
                raise ValueError("layers must be 'all', 'last:N' (N>=1) or a list of layer indices")
        return v


class TrainParams(_Section):
    learning_rate: float = Field(3e-4, gt=0)
    overlong: Literal["drop", "cut"] = "drop"   # examples longer than max_len: drop (never teach an answer
    #                                             without its end token) or cut (answer truncated, no end token)
    num_proc: int = Field(0, ge=0)             # tokenisation processes (datasets.map); 0 = auto (1 below 10k examples)
    epochs: float = Field(1, gt=0)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_len: int = Field(256, ge=16)
    max_train_examples: int = Field(0, ge=0)
    source_caps: dict[str, int] = Field(default_factory=dict)   # {source: max train examples} (mixing a big source)
    max_val_examples: int = Field(0, ge=0)
    eval_steps: int = Field(10, ge=1)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    seed: int = 42
    gradient_checkpointing: bool = False
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    early_stopping_patience: int = Field(0, ge=0)
    keep_best: bool = True
    save_steps: int = Field(10, ge=1)
    num_threads: int = Field(0, ge=0)
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup"] = "cosine"
    max_grad_norm: float = Field(1.0, ge=0)
    cache_frozen_prefix: bool = True
    kl_to_base: float = Field(0.0, ge=0)        # λ: + λ·KL(base ‖ tuned) at answer positions (stages/training/base_kl.py); 0 = off
    kl_top_k: int = Field(32, ge=1)             # base tokens kept per position for that KL (renormalised)
    unlikelihood: float = Field(0.0, ge=0)      # α: + α·token-level unlikelihood of the answer's earlier tokens
    #                                             (stages/training/unlikelihood.py); 0 = off


class MergeParams(_Section):
    method: Literal["peft", "streaming"] = "streaming"
    scale: float = Field(1.0, ge=0, le=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    verify_tolerance: float = Field(1e-2, gt=0)
    verify_prompts: int = Field(3, ge=0)


class GenerationParams(_Section):
    """Decoding used by predict_base, evaluate and serve alike (stages/model/generate.py ``Decoding``)."""
    max_new_tokens: int = Field(256, ge=1)
    min_new_tokens: int = Field(0, ge=0)            # stop tokens suppressed until the answer has this many; 0 = off
    repetition_penalty: float = Field(1.0, ge=1.0)  # lowers logits of tokens already in the ANSWER (prompt free); 1 = off
    no_repeat_ngram_size: int = Field(0, ge=0)      # ban any token n-gram repeated within the answer; 0 = off
    stop_tokens: list[str] = Field(default_factory=lambda: ["<|im_end|>", "<|endoftext|>"], min_length=1)
    dry_multiplier: float = Field(0.0, ge=0.0)     # DRY penalty on tokens that extend a repeat of the answer; 0 = off
    dry_base: float = Field(1.75, ge=1.0)          # penalty grows by this factor per repeated token beyond ...
    dry_allowed_length: int = Field(2, ge=1)       # ... this many (repeats this short are free)


class EvalParams(_Section):
    max_examples: int = Field(0, ge=0)
    batch_size: int = Field(32, ge=1)
    compare_base: bool = True
    bertscore_model: str = "models/base"
    bertscore_layers: int = Field(12, ge=1)
    bertscore_batch_size: int = Field(16, ge=1)
    ppl_max_len: int = Field(1024, ge=32)
    mcq_file: str = ""


class ProbeParams(_Section):
    """The hidden-state probe of the injection pre-check (stages/safety/injection_probe.py)."""
    encoder: str = "models/base"        # an HF causal-LM dir (the triage stage depends on it in dvc.yaml)
    layer: int = Field(12, ge=0)        # run this many layers, pool their output; 0 = no probe
    max_tokens: int = Field(128, ge=8)  # longer messages: their first max_tokens tokens
    batch_size: int = Field(16, ge=1)
    c: float = Field(1.0, gt=0)         # logistic regression's inverse regularisation (standardised features)


class InjectionParams(_Section):
    """The learned injection pre-check (stages/safety/injection_model.py), fitted by the triage stage."""
    train: list[str] = Field(default_factory=lambda: ["data/injection/writer_p_dev.jsonl"])
    held_out: list[str] = Field(default_factory=lambda: ["data/injection/writer_q_eval.jsonl",
                                                         "data/injection/writer_w_eval.jsonl"])  # other writers' sets:
    # measured only, never fitted or tuned on; a single path is accepted too ('' or [] = none)

    @field_validator("held_out", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return ([v] if v else []) if isinstance(v, str) else v
    max_false_alarms: float = Field(0.01, ge=0, lt=1)       # out-of-fold, on the benign training rows
    gray_floor: float = Field(1.0, gt=0, le=1)  # P(injection) at or above this (below the threshold): an answer that
    # starts by agreeing is refused by the post-check (stages/safety/postcheck.py); 1 = off
    folds: int = Field(5, ge=2, le=20)
    ngram_max: int = Field(3, ge=1, le=6)
    min_df: int = Field(2, ge=1)
    c: float = Field(4.0, gt=0)
    seed: int = 42
    probe: ProbeParams = Field(default_factory=ProbeParams)


class TriageParams(_Section):
    """Emergency / self-harm triage (stages/triage.py); see params.yaml for what each key does."""
    data_dir: str = "data/triage"
    independent: str = "data/triage/independent/eval.jsonl"
    held_back: list[str] = Field(default_factory=list)      # measured only (params.yaml lists the pending writers)
    train_only: list[str] = Field(default_factory=list)     # fitted on, never split / scored / tuned on (params.yaml)
    seed: int = 42
    val_frac: float = Field(0.2, gt=0, lt=1)
    test_frac: float = Field(0.2, gt=0, lt=1)
    corpus_extra: bool = True
    corpus_negatives: bool = True
    candidates: list[Literal["char_lr", "char_nb"]] = Field(default_factory=lambda: ["char_lr"],
                                                            min_length=1)
    ngram_max: int = Field(4, ge=1, le=6)
    min_df: int = Field(1, ge=1)
    max_features: int = Field(0, ge=0)
    c: float = Field(10.0, gt=0)
    val_recall: float = Field(0.98, gt=0, le=1)
    cv_folds: int = Field(5, ge=0, le=20)
    min_recall: float = Field(0.95, ge=0, le=1)
    rule_floor: float = Field(0.3, ge=0, le=1)
    pointer_floor: float = Field(1.0, gt=0, le=1)
    min_chars: int = Field(6, ge=0)
    fold_punctuation: bool = True                            # the classifier reads punctuation-folded text (triage_model.classifier_text)
    reply_min_similarity: float = Field(0.35, ge=0, le=1)
    reply_ngram_max: int = Field(3, ge=1, le=6)
    injection: InjectionParams = Field(default_factory=InjectionParams)

    @model_validator(mode="after")
    def _fracs(self):
        if self.val_frac + self.test_frac >= 1:
            raise ValueError("val_frac + test_frac must be < 1")
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (thresholds on the val split) or at least 2")
        return self


class ServeParams(_Section):
    max_batch_size: int = Field(8, ge=1)
    batch_timeout: float = Field(0.05, ge=0)
    max_new_tokens: int = Field(0, ge=0)     # request cap; 0 = generation.max_new_tokens
    max_question_chars: int = Field(1000, ge=1)
    cache_size: int = Field(1024, ge=0)
    cache_ttl_s: float = Field(3600, ge=0)
    api_key_env: str = "MEDQA_API_KEY"
    request_timeout_s: float = Field(600, ge=0)
    audit_log: str = "artifacts/serve/audit.jsonl"
    dtype: Literal["auto", "float32", "bfloat16", "float16", "int8"] = "auto"   # int8: stages/model/quantize.py
    max_in_flight: int = Field(64, ge=0)             # requests waiting for the model at once; more → 429; 0 = no limit
    generation_timeout_s: float = Field(300, ge=0)   # a model call (queue + generation) past this → 503; 0 = none
    body_timeout_s: float = Field(10, ge=0)          # request body must arrive within this (slow clients → 408)
    max_prompt_tokens: int = Field(1536, ge=1)       # system prompt + question tokens; more → 422
    triage_model: str = "models/triage"
    feedback_db: str = "artifacts/serve/feedback.sqlite"   # answers, feedback and review queue (SQLite, WAL)
    reviewer_key_env: str = "MEDQA_REVIEWER_KEY"            # env var with the reviewer key; unset = /review API off
    metrics_auth: bool = True      # GET /metrics needs the API key (false: open, for in-network scrapers)
    monitor_window: int = Field(200, ge=1)   # answers in the /metrics quality sliding window


class ExportParams(_Section):
    """``export`` stage (export/dvc.yaml): models/merged → models/export/medqa-<quant>.gguf + Modelfile."""
    quants: list[Literal["F32", "F16", "Q8_0"]] = Field(default_factory=lambda: ["F16", "Q8_0"], min_length=1)
    verify_prompts: int = Field(3, ge=1)          # first N val questions
    verify_new_tokens: int = Field(16, ge=1)      # greedy tokens compared per prompt
    tolerance: dict[str, float] = Field(default_factory=lambda: {"F16": 0.05, "Q8_0": 1.0})
    identical_tokens: list[str] = Field(default_factory=lambda: ["F16"])
    modelfile_quant: str = "Q8_0"                 # the file the Ollama Modelfile's FROM names
    num_predict: int = Field(256, ge=1)           # Modelfile PARAMETER num_predict (answer length cap)

    @model_validator(mode="after")
    def _consistent(self):
        for q in self.quants:
            if q not in self.tolerance or not self.tolerance[q] > 0:
                raise ValueError(f"tolerance needs a positive entry for every quant; missing/invalid: {q}")
        for name, vals in (("identical_tokens", self.identical_tokens), ("modelfile_quant", [self.modelfile_quant])):
            bad = [v for v in vals if v not in self.quants]
            if bad:
                raise ValueError(f"{name}: {bad} not in quants {self.quants}")
        if len(set(self.quants)) != len(self.quants):
            raise ValueError("quants: duplicates")
        return self


class Params(_Section):
    data: DataParams = Field(default_factory=DataParams)
    clean: CleanParams = Field(default_factory=CleanParams)
    split: SplitParams = Field(default_factory=SplitParams)
    model: ModelParams = Field(default_factory=ModelParams)
    prompt: PromptParams
    lora: LoraParams = Field(default_factory=LoraParams)
    train: TrainParams = Field(default_factory=TrainParams)
    merge: MergeParams = Field(default_factory=MergeParams)
    generation: GenerationParams = Field(default_factory=GenerationParams)
    eval: EvalParams = Field(default_factory=EvalParams)
    triage: TriageParams = Field(default_factory=TriageParams)
    serve: ServeParams = Field(default_factory=ServeParams)
    review: ReviewParams = Field(default_factory=ReviewParams)
    export: ExportParams = Field(default_factory=ExportParams)


class ParamsError(ValueError):
    """Raised for an unreadable params file or an invalid key/value; the message names the key."""


def _format(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{source}: {key}: {msg}")
    return "invalid parameters:\n  " + "\n  ".join(lines)


def parse_params(raw: dict, source: str = PARAMS_FILE) -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: top level must be a mapping")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format(err, source)) from None


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    return parse_params(raw or {}, str(path))
