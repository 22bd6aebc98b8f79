"""train stage: LoRA-tune models/base on data/split/train.jsonl → models/lora (adapter + tokenizer +
resolved training config), dvclive/ curves and metrics/train.json.

    python -m stages.train                       # one process (CPU or one GPU)
    torchrun --nproc_per_node 2 -m stages.train  # DDP (gloo on CPU, nccl on GPUs)
    accelerate launch --config_file stages/accelerate/ddp.yaml -m stages.train

Prompts come only from stages.model.prompt (loss on answer tokens only). Batches are length-grouped.
Validation loss is measured before training (the base model) and every ``train.eval_steps``;
early stopping and keep-best act on it. A killed run resumes from models/checkpoints/<run key>/."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch

from stages.common.config import Params, load_params
from stages.training.setup import Paths, TrainerSetup

log = logging.getLogger("stages.train")


class Trainer(TrainerSetup):
    """The loop (train_step, evaluate, early stopping, checkpoints) and the outputs (adapter, metrics)."""

    # ----------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, disable_adapter: bool = False) -> float:
        from stages.training.batching import eval_batches

        self.model.eval()
        batches = eval_batches(self.val_ex.lengths, self.p.train.batch_size)
        # every process runs the same number of forwards (collectives inside DDP/FSDP forward);
        # the repeats that even out the count are weighted 0
        weights = [1.0] * len(batches) + [0.0] * (-len(batches) % self.world)
        batches = batches + batches[:len(weights) - len(batches)]
        sums = torch.zeros(2, dtype=torch.float64, device=self.acc.device)
        ctx = self.peft_model.disable_adapter() if disable_adapter else nullcontext()
        with ctx:
            for idx, w in list(zip(batches, weights))[self.rank::self.world]:
                batch = {k: v.to(self.acc.device) for k, v in self.collate(idx, self.val_ex).items()}
                with self.autocast():
                    prefix = self.cache.batch("val", idx, batch)
                    loss, n = self.model(**batch, prefix_hidden=prefix)
                sums += w * torch.stack([loss.double(), n.double()])
        sums = self.acc.reduce(sums, reduction="sum") if self.world > 1 else sums
        self.model.train()
        return (sums[0] / sums[1]).item()

    def adapter_state(self) -> dict:
        """LoRA tensors (peft names, with the adapter name) as CPU copies. Under FSDP/DeepSpeed the
        full state dict is gathered first (a collective: every process calls this)."""
        if self.sharded:
            full = self.acc.get_state_dict(self.model)
            items = ((k.removeprefix("peft_model."), v) for k, v in full.items())
        else:
            items = self.peft_model.state_dict().items()
        return {k: v.detach().to("cpu", copy=True) for k, v in items if "lora_" in k}

    def record_eval(self, step: int, val: float) -> None:
        st = self.state
        st.evals.append({"step": step, "val_loss": val})
        if val < st.best_val:
            st.best_val, st.best_step, st.bad_evals = val, step, 0
            if self.p.train.keep_best:
                st.best_adapter = self.adapter_state()
        elif step > 0:
            st.bad_evals += 1
        self.live_log(step, {"val/loss": val})

    # ----------------------------------------------------------------- logging (main process)
    def open_live(self):
        self.live = None
        if not self.acc.is_main_process:
            return
        from dvclive import Live

        self.live = Live(dir=str(self.paths.live), resume=False, save_dvc_exp=False, dvcyaml=False, report=None)
        # replay the curves of a resumed run so the plots hold the whole run
        for e in self.state.evals:
            self.live_log(e["step"], {"val/loss": e["val_loss"]})
        for s in self.state.steps_log:
            self.live_log(s["step"], {"train/loss": s["loss"], "train/lr": s["lr"]}
                          | ({"train/kl": s["kl"]} if "kl" in s else {}) | ({"train/ul": s["ul"]} if "ul" in s else {}))

    def live_log(self, step: int, values: dict) -> None:
        if getattr(self, "live", None) is None:
            return
        self.live.step = step
        for k, v in values.items():
            self.live.log_metric(k, v)

    # ----------------------------------------------------------------- one optimizer step
    def train_step(self, step: int) -> tuple[float, int, float, float]:
        plan = self.planner.step(step)
        mine = plan.micro[self.rank::self.world]
        t0 = time.perf_counter()
        local = torch.zeros(4, dtype=torch.float64, device=self.acc.device)   # loss, real tokens, KL, UL sums
        lam, alpha = self.p.train.kl_to_base, self.p.train.unlikelihood
        for j, idx in enumerate(mine):
            batch = {k: v.to(self.acc.device) for k, v in self.collate(idx, self.train_ex).items()}
            sync = self.acc.no_sync(self.model) if j < len(mine) - 1 else nullcontext()
            with sync:
                with self.autocast():
                    prefix = self.cache.batch("train", idx, batch)
                    kl = self.base_targets.request(idx) if self.base_targets is not None else None
                    loss_sum, _, *extras = self.model(**batch, prefix_hidden=prefix, kl=kl, ul=alpha > 0)
                    zero = torch.zeros((), device=loss_sum.device)
                    kl_sum = extras.pop(0) if kl is not None else zero
                    ul_sum = extras.pop(0) if alpha > 0 else zero
                # DDP averages gradients over processes: scale so the result is the token mean of the step
                self.acc.backward((loss_sum + lam * kl_sum + alpha * ul_sum) * self.world / max(1, plan.target_tokens))
            local += torch.stack([loss_sum.detach().double(), batch["attention_mask"].sum().double(),
                                  kl_sum.detach().double(), ul_sum.detach().double()])
        if self.p.train.max_grad_norm > 0:
            self.acc.clip_grad_norm_(self.params_list, self.p.train.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        total = self.acc.reduce(local, reduction="sum") if self.world > 1 else local
        seconds = time.perf_counter() - t0
        self.last_kl = (total[2] / max(1, plan.target_tokens)).item()   # KL to the base per answer token
        self.last_ul = (total[3] / max(1, plan.target_tokens)).item()   # unlikelihood per answer token
        return (total[0] / max(1, plan.target_tokens)).item(), int(total[1].item()), seconds, lr

    # ----------------------------------------------------------------- the loop
    def run(self) -> dict:
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        st = self.state
        t_start = time.time()
        self.open_live()
        self.eval_seconds = 0.0
        if not st.evals:
            t0 = time.time()
            st.val_loss_base = self.evaluate(disable_adapter=True)
            self.eval_seconds += time.time() - t0
            self.record_eval(0, st.val_loss_base)
            self.info(f"step 0: base model val loss {st.val_loss_base:.4f} ({time.time() - t0:.1f}s)")
        self.model.train()
        bar = tqdm(total=self.total_steps, initial=st.step, desc="train", unit="step",
                   disable=not self.acc.is_main_process, dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 30)
        last_eval_step = st.evals[-1]["step"]
        with logging_redirect_tqdm():       # log lines above the bar, not glued to it
            last_eval_step = self.loop(bar, last_eval_step)
        bar.close()
        if last_eval_step != st.step:                     # (early stop always follows an eval)
            self.record_eval(st.step, self.evaluate())
        return self.finish(time.time() - t_start, self.eval_seconds)

    def loop(self, bar, last_eval_step: int) -> int:
        tp, st = self.p.train, self.state
        while st.step < self.total_steps and not st.early_stopped:
            loss, tokens, seconds, lr = self.train_step(st.step)
            st.step += 1
            st.tokens += tokens
            st.train_seconds += seconds
            rec = {"step": st.step, "loss": loss, "lr": lr, "tokens_per_s": tokens / max(seconds, 1e-9)}
            live = {"train/loss": loss, "train/lr": lr}                   # tokens/s: artifacts/timing only
            if tp.kl_to_base > 0:
                rec["kl"] = live["train/kl"] = self.last_kl
            if tp.unlikelihood > 0:
                rec["ul"] = live["train/ul"] = self.last_ul
            st.steps_log.append(rec)
            self.live_log(st.step, live)
            last = st.step == self.total_steps
            if st.step % tp.eval_steps == 0 or last:
                t0 = time.time()
                val = self.evaluate()
                self.eval_seconds += time.time() - t0
                self.record_eval(st.step, val)
                last_eval_step = st.step
                self.info(f"step {st.step}/{self.total_steps}: train loss {loss:.4f}, val loss {val:.4f} "
                          f"(best {st.best_val:.4f} @ {st.best_step})")
                if tp.early_stopping_patience and st.bad_evals >= tp.early_stopping_patience:
                    st.early_stopped = True
                    self.info(f"early stopping: no val-loss improvement in {st.bad_evals} evaluations")
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{st.evals[-1]['val_loss']:.3f}",
                            tok_s=f"{st.tokens / max(st.train_seconds, 1e-9):.0f}")
            bar.update(1)
            if st.step % tp.save_steps == 0 and not last and not st.early_stopped:
                self.ckpt.save(st.step, {"key_parts": self.key_parts, "step": st.step})
            if self.fault_at_step is not None and st.step == self.fault_at_step:
                os.kill(os.getpid(), signal.SIGKILL)     # fault injection for resume tests
        return last_eval_step

    # ----------------------------------------------------------------- outputs
    def finish(self, seconds: float, eval_seconds: float) -> dict:
        from stages.common.jsonio import atomic_dir, write_json
        from stages.common.timing import write_timing
        from stages.training.lora_setup import sort_adapter_config

        tp, st = self.p.train, self.state
        self.check_replicas()
        val_final = st.evals[-1]["val_loss"]
        saved = "best" if tp.keep_best and st.best_adapter and st.best_step != st.step else "last"
        adapter = st.best_adapter if saved == "best" else self.adapter_state()
        window = st.steps_log[-min(tp.eval_steps, len(st.steps_log)):]
        first = st.steps_log[:min(tp.eval_steps, len(st.steps_log))]
        tw = lambda rows: sum(r["loss"] for r in rows) / max(1, len(rows))  # noqa: E731
        metrics = {
            "val_loss_base": st.val_loss_base, "val_loss_best": st.best_val, "val_loss_final": val_final,
            "val_loss_drop": st.val_loss_base - st.best_val,
            "train_loss_first": tw(first), "train_loss_final": tw(window),
            "steps": st.step, "total_steps": self.total_steps,
            "epochs": st.step / self.planner.steps_per_epoch, "best_step": st.best_step,
            "early_stopped": int(st.early_stopped), "saved_best": int(saved == "best"),
            "examples": self.train_stats.examples, "val_examples": self.val_stats.examples,
            "truncated": self.train_stats.truncated, "truncated_val": self.val_stats.truncated,
            "dropped_overlong": self.train_stats.dropped, "dropped_overlong_val": self.val_stats.dropped,
            "answer_tokens_cut": self.train_stats.answer_tokens_cut,
            "train_tokens": self.train_stats.tokens, "train_target_tokens": self.train_stats.target_tokens,
            "pad_fraction": self.pad_fraction(),
            "trainable_params": self.trainable, "world_size": self.world,
            "prefix_cache": int(self.cache.enabled), "resumed_from_step": self.resumed_from,
        }
        if tp.kl_to_base > 0:
            metrics["train_kl_final"] = sum(r["kl"] for r in window) / max(1, len(window))
        if tp.unlikelihood > 0:
            metrics["train_ul_final"] = sum(r["ul"] for r in window) / max(1, len(window))
        # run-to-run noise stays out of the tracked metrics (byte-identical rebuilds)
        timing = {"seconds": seconds, "train_seconds": st.train_seconds, "eval_seconds": eval_seconds,
                  "tokens_per_s": st.tokens / max(st.train_seconds, 1e-9),
                  "tokens_per_s_by_step": [[r["step"], round(r["tokens_per_s"], 2)] for r in st.steps_log]}
        if self.acc.is_main_process:
            with atomic_dir(self.paths.out) as tmp:
                self.peft_model.save_pretrained(str(tmp), state_dict=adapter)
                sort_adapter_config(tmp, self.peft_model.peft_config[self.peft_model.active_adapter])
                self.tok.save_pretrained(str(tmp))
                write_json(tmp / "training_config.json", self.resolved_config(saved))
            write_json(self.paths.metrics, metrics)
            write_timing("train", timing)
            if self.live is not None:
                for k in ("val_loss_base", "val_loss_best", "val_loss_final"):
                    self.live.summary[k] = metrics[k]
                self.live.make_summary()
                self.live.end()
        self.ckpt.clear()
        self.info(f"saved {saved} adapter (step {st.best_step if saved == 'best' else st.step}) to {self.paths.out}; "
                  f"val loss {st.val_loss_base:.4f} → best {st.best_val:.4f}; "
                  f"{timing['tokens_per_s']:.1f} tok/s; {seconds:.0f}s")
        return metrics

    def pad_fraction(self) -> float:
        real = padded = 0
        for s in range(self.planner.steps_per_epoch):
            for idx in self.planner.step(s).micro:
                lens = [self.train_ex.lengths[i] for i in idx]
                real += sum(lens)
                padded += max(lens) * len(lens)
        return 1 - real / max(1, padded)

    def check_replicas(self) -> None:
        """DDP keeps every process's adapter identical; verify it instead of assuming it."""
        if self.world == 1 or self.sharded:     # sharded: each process holds a different shard
            return
        s = torch.stack([p.detach().double().sum() for p in self.params_list]).sum().reshape(1)
        all_s = self.acc.gather(s.to(self.acc.device))
        if not torch.allclose(all_s, all_s[0].expand_as(all_s), rtol=1e-6, atol=1e-9):
            raise RuntimeError(f"DDP replicas diverged: adapter checksums {all_s.tolist()}")
        self.info(f"DDP: {self.world} replicas hold identical adapters (checksum {all_s[0].item():.6f})")

    def resolved_config(self, saved: str) -> dict:
        import json

        import peft
        import transformers

        resolved = self.paths.base / "resolved.json"
        return {
            "params": {"lora": self.p.lora.model_dump(), "train": self.p.train.model_dump(),
                       "prompt": self.p.prompt.model_dump()},
            "base_model": str(self.paths.base),
            "base_resolved": json.loads(resolved.read_text(encoding="utf-8")) if resolved.exists() else None,
            "data": {"train": str(self.paths.train), "val": str(self.paths.val), **self.key_parts["data"],
                     **self.train_stats.as_dict("train_"), **self.val_stats.as_dict("val_")},
            # no run key (it fingerprints base weights by mtime) and no device index: content only
            "world_size": self.world, "mixed_precision": self.mp,
            "device": self.acc.device.type, "saved": saved, "best_step": self.state.best_step,
            "steps": self.state.step, "prefix_cache": self.cache.enabled,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        }


def train(params: Params, paths: Paths = Paths(), fault_at_step: int | None = None) -> dict:
    tr = Trainer(params, paths, fault_at_step)
    tr.setup()
    return tr.run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = Paths()
    for name in ("params", "base", "train", "val", "out", "checkpoints", "metrics", "live"):
        ap.add_argument(f"--{name}", type=Path, default=getattr(d, name))
    ap.add_argument("--fault-at-step", type=int, default=None,
                    help="testing: SIGKILL this process right after this optimizer step (resume tests)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*is deprecated")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("dvclive", "accelerate", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    params = load_params(args.params)
    paths = Paths(**{k: getattr(args, k) for k in Paths.__dataclass_fields__})
    train(params, paths, args.fault_at_step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
