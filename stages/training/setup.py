"""The train stage's set-up half (stages/train.py holds the loop and the outputs): paths, resumable state,
the mixed-precision choice, and ``TrainerSetup`` — data (🤗 datasets, Arrow), base model + LoRA with the
answer-only loss and frozen-prefix cache, optimizer and schedule, and resuming from a checkpoint."""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from stages.common.config import Params

log = logging.getLogger("stages.train")

# modules whose code decides the result: they key checkpoints and are the stage deps in dvc.yaml
CODE_FILES = ("stages/train.py", "stages/training/setup.py", "stages/training/train_data.py",
              "stages/training/batching.py", "stages/training/answer_loss.py", "stages/training/base_kl.py",
              "stages/training/unlikelihood.py",
              "stages/training/lora_setup.py", "stages/training/checkpoint.py", "stages/model/prompt.py", "stages/common/config.py",
              "stages/model/modeling.py", "stages/common/jsonio.py", "stages/data/tiers.py", "stages/safety/rules.py",
              "stages/common/timing.py", "stages/safety/normalize.py", "stages/data/text.py", "stages/safety/pii.py",
              "stages/safety/pii_names.py", "stages/safety/pii_name_lists.py", "stages/safety/pii_name_scorer.py",
              "stages/safety/pii_name_weights.json",
              "stages/safety/pii_address.py", "stages/safety/pii_numbers.py", "stages/safety/pii_regional_ids.py",
              "stages/safety/pii_names_roman.py", "stages/safety/pii_names_minority.py", "stages/safety/pii_name_cues.py",
              "stages/safety/pii_name_dictionary.py")
REPO = Path(__file__).resolve().parents[2]
# tokenised Arrow tables (datasets cache; reused across runs by fingerprint). HF_DATASETS_CACHE overrides.
DATA_CACHE = Path(os.environ.get("HF_DATASETS_CACHE") or REPO / ".cache" / "datasets")


@dataclass
class Paths:
    params: Path = Path("params.yaml")
    base: Path = Path("models/base")
    train: Path = Path("data/split/train.jsonl")
    val: Path = Path("data/split/val.jsonl")
    out: Path = Path("models/lora")
    checkpoints: Path = Path("models/checkpoints")
    metrics: Path = Path("metrics/train.json")
    live: Path = Path("dvclive")


@dataclass
class TrainState:
    """Everything besides weights/optimizer/RNG a resumed run needs (checkpointed by accelerate)."""
    step: int = 0
    val_loss_base: float = float("nan")
    best_val: float = float("inf")
    best_step: int = 0
    bad_evals: int = 0
    early_stopped: bool = False
    tokens: int = 0                 # real (non-pad) tokens trained on, all processes
    train_seconds: float = 0.0
    evals: list = field(default_factory=list)      # [{"step", "val_loss"}]
    steps_log: list = field(default_factory=list)  # [{"step", "loss", "lr", "tokens_per_s"}]
    best_adapter: dict = field(default_factory=dict)

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    def load_state_dict(self, d: dict) -> None:
        self.__dict__.update(d)


def resolve_mixed_precision(name: str) -> str:
    """``auto``: bf16 autocast on a GPU that supports it (fp16 + grad scaler on older GPUs), bf16 on a
    CPU with native bf16 matmuls (AMX / AVX512-BF16; bench/train_throughput.py --precision), else fp32."""
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    from stages.model.modeling import cpu_has_native_bf16, pick_device

    return "bf16" if pick_device() == "cpu" and cpu_has_native_bf16() else "no"


class TrainerSetup:
    """Builds what ``stages.train.Trainer`` runs: ``setup()`` fills in data, model, optimizer and state."""

    def __init__(self, params: Params, paths: Paths, fault_at_step: int | None = None):
        self.p, self.paths, self.fault_at_step = params, paths, fault_at_step

    # ----------------------------------------------------------------- set-up
    def setup(self):
        from accelerate import Accelerator

        from stages.training.checkpoint import is_sharded
        from stages.model.modeling import pick_device, set_threads

        tp = self.p.train
        set_threads(tp.num_threads)
        self.mp = resolve_mixed_precision(tp.mixed_precision)
        # cpu=True lets accelerate set up gloo DDP when launched by torchrun/accelerate on CPUs
        on_cpu = pick_device() == "cpu"
        # CPU bf16 is plain autocast (no grad scaler), done here rather than through accelerate's
        # process-wide state, so fp32 and bf16 trainers can live side by side (bench/train_throughput.py)
        self.acc = Accelerator(mixed_precision="no" if on_cpu and self.mp == "bf16" else self.mp, cpu=on_cpu)
        self.autocast = ((lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if on_cpu and self.mp == "bf16"
                         else self.acc.autocast)
        self.world, self.rank = self.acc.num_processes, self.acc.process_index
        self.sharded = is_sharded(self.acc)
        if self.acc.distributed_type.value == "DEEPSPEED" and tp.grad_accum != 1:
            raise ValueError("train.grad_accum must be 1 under DeepSpeed (its engine steps inside backward); "
                             "raise train.batch_size or the number of processes instead")
        if not (self.paths.base / "config.json").exists():
            raise FileNotFoundError(f"{self.paths.base}: no base model (run `dvc repro base` first)")
        self.setup_data()
        self.setup_model()
        self.setup_optimizer()
        self.setup_resume()

    def setup_data(self):
        """Validated, deterministic tier-stratified subsets, encoded by stages.model.prompt into Arrow
        (🤗 datasets: memory-mapped, tokenised with ``map``, cached by a fingerprint of file, tokenizer,
        prompt and encoding params)."""
        from stages.training.batching import collate
        from stages.training.checkpoint import model_dir_fingerprint, run_key, sha256_file
        from stages.model.modeling import load_tokenizer
        from stages.training.train_data import encode_dataset, load_split_dataset, read_split, subset_indices, tier_counts

        tp = self.p.train
        self.tok = load_tokenizer(self.paths.base)
        system = self.p.prompt.system
        tok_files = {k: v for k, v in model_dir_fingerprint(self.paths.base).items() if "token" in k or k.endswith(".jinja")}
        for name, path, limit in (("train", self.paths.train, tp.max_train_examples),
                                  ("val", self.paths.val, tp.max_val_examples)):
            recs = read_split(path, keep_text=False)
            idx = subset_indices(recs, limit, tp.seed, tp.source_caps if name == "train" else None)
            ds = load_split_dataset(path, idx, DATA_CACHE)
            fp = run_key({"file": sha256_file(path), "idx": idx, "tok": tok_files, "system": system,
                          "max_len": tp.max_len, "code": sha256_file(REPO / "stages/model/prompt.py"),
                          "enc": sha256_file(REPO / "stages/training/train_data.py")})
            ex, stats = encode_dataset(ds, self.tok, system, tp.max_len, tp.overlong, tp.num_proc, fingerprint=fp)
            picked = [recs[i] for i in idx] if idx is not None else recs
            setattr(self, f"{name}_ex", ex)
            setattr(self, f"{name}_stats", stats)
            setattr(self, f"{name}_counts", (len(picked), len(recs), tier_counts(picked)))
        self.collate = lambda idx, ex: collate([ex[i] for i in idx], self.tok.pad_token_id)
        (n_tr, all_tr, tiers), (n_va, all_va, _) = self.train_counts, self.val_counts
        self.info(f"data: train {n_tr}/{all_tr} {tiers}, val {n_va}/{all_va}; max_len {tp.max_len}: "
                  f"{self.train_stats.truncated} train / {self.val_stats.truncated} val examples longer "
                  f"({tp.overlong}: {self.train_stats.dropped} / {self.val_stats.dropped} dropped, "
                  f"{self.train_stats.answer_tokens_cut} answer tokens cut), {self.train_stats.tokens} train tokens")
        if not len(self.train_ex) or not len(self.val_ex):
            raise ValueError("no train or val examples left after train.overlong=drop; raise train.max_len")

    def setup_model(self):
        """Base model + LoRA, the answer-only loss module (self-checked) and the prefix cache."""
        import psutil
        from accelerate.utils import set_seed

        from stages.training.answer_loss import AnswerLoss, PrefixCache, first_trainable_layer, prefix_cache_blocker
        from stages.training.lora_setup import apply_lora
        from stages.model.modeling import load_model

        tp, lp, acc = self.p.train, self.p.lora, self.acc
        base_dtype = {"bf16": "bfloat16", "fp16": "float16"}.get(self.mp, "float32")
        set_seed(tp.seed)                       # same LoRA init on every process and every run
        model = load_model(self.paths.base, dtype=base_dtype, device=str(acc.device))
        model.config.use_cache = False
        if tp.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.peft_model, self.trainable, total = apply_lora(model, lp)
        start = first_trainable_layer(self.peft_model)
        blocker = ("train.cache_frozen_prefix is off" if not tp.cache_frozen_prefix else
                   "sharded model (FSDP/DeepSpeed)" if self.sharded else prefix_cache_blocker(self.peft_model, start))
        self.loss_module = AnswerLoss(self.peft_model, prefix_start=0 if blocker else start).eval()
        probe = self.collate([min(range(len(self.val_ex)), key=lambda i: self.val_ex.lengths[i])], self.val_ex)
        with self.autocast():
            ok, why = self.loss_module.self_check({k: v.to(acc.device) for k, v in probe.items()},
                                                  rtol=2e-4 if self.mp == "no" else 2e-2)
        if not ok:
            blocker = why
            self.loss_module.prefix_start = 0
        self.info(f"LoRA r={lp.r} on {lp.layers} ({self.trainable:,} of {total:,} params trainable); "
                  f"{why}; frozen-prefix cache: " + (f"on (layers < {start} run once per example)" if not blocker
                                                    else f"off ({blocker})"))
        # host memory for cached activations: a quarter of what is free now, shared by the processes
        budget = int(psutil.virtual_memory().available * 0.25 / self.acc.num_processes)
        self.cache = PrefixCache(self.loss_module, enabled=not blocker, budget_bytes=budget)
        self.base_targets = None
        if tp.kl_to_base > 0:
            from stages.training.base_kl import BaseTargets

            self.base_targets = BaseTargets(tp.kl_top_k, budget_bytes=budget)
            self.info(f"KL to the base: λ {tp.kl_to_base} on the top {tp.kl_top_k} base tokens per answer position")
        if tp.unlikelihood > 0:
            self.info(f"unlikelihood: α {tp.unlikelihood} on each answer position's earlier answer tokens")

    def setup_optimizer(self):
        """Step plan, AdamW over the LoRA parameters, warmup + decay schedule, accelerate.prepare."""
        from accelerate.utils import set_seed
        from transformers import get_scheduler

        from stages.training.batching import Planner

        tp = self.p.train
        self.planner = Planner(self.train_ex.lengths, self.train_ex.targets,
                               tp.batch_size, tp.grad_accum, self.world, tp.seed)
        self.total_steps = max(1, math.ceil(tp.epochs * self.planner.steps_per_epoch - 1e-9))
        self.params_list = [p for p in self.peft_model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(self.params_list, lr=tp.learning_rate, weight_decay=tp.weight_decay)
        # the schedule is stepped by us once per optimizer step (not prepared: accelerate would step it
        # once per process)
        self.scheduler = get_scheduler(tp.lr_scheduler, optimizer,
                                       num_warmup_steps=math.ceil(tp.warmup_ratio * self.total_steps),
                                       num_training_steps=self.total_steps)
        self.model, self.optimizer = self.acc.prepare(self.loss_module, optimizer)
        set_seed(tp.seed + 1000 * self.rank)   # distinct dropout streams per process

    def setup_resume(self):
        """Run key, checkpoint hooks, and loading the newest checkpoint of this key if any."""
        from stages.training.checkpoint import Checkpointer, model_dir_fingerprint, run_key, sha256_file

        tp = self.p.train
        self.state = TrainState()
        self.key_parts = {
            "lora": self.p.lora.model_dump(), "train": tp.model_dump(exclude={"num_threads", "save_steps"}),
            "prompt": self.p.prompt.model_dump(), "world_size": self.world, "mixed_precision": self.mp,
            "data": {"train": sha256_file(self.paths.train), "val": sha256_file(self.paths.val)},
            "base": model_dir_fingerprint(self.paths.base),
            "code": {f: sha256_file(REPO / f) for f in CODE_FILES if (REPO / f).exists()},
        }
        self.key = run_key(self.key_parts)
        self.ckpt = Checkpointer(self.acc, self.paths.checkpoints, self.key, self.peft_model,
                                 [self.scheduler, self.state])
        for other in self.ckpt.others():
            self.info(f"note: {other} holds a checkpoint of another config (kept; delete it if unneeded)")
        self.resumed_from = 0
        latest = self.ckpt.latest()
        if latest:
            self.ckpt.load(latest[1])
            self.resumed_from = self.state.step
            self.info(f"resumed from {latest[1]} (step {self.state.step}/{self.total_steps})")

    def info(self, msg: str) -> None:
        if self.acc.is_main_process:
            log.info(msg)
