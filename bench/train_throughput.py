"""Training throughput of our train loop vs a naive HF Trainer + PEFT loop, in one run, same model,
same examples, same LoRA rank/targets.

    flock /tmp/medqa-heavy.lock python bench/train_throughput.py [--model models/base]
        [--data data/split/train.jsonl] [--steps 3] [--warmup 1] [--batch-size 4] [--max-len 256]
        [--no-ablation]
    flock /tmp/medqa-heavy.lock python bench/train_throughput.py --precision [--steps 12] [--val 24]

* naive:    transformers.Trainer + peft, LoRA on every layer, batches padded to max_len
            (DataCollatorForSeq2Seq padding="max_length"), loss from the model's full-vocab logits.
* ours-all: stages.train's loop (length-grouped batches, answer-only LM head), LoRA on every layer —
            the loop alone, same adapters as naive (ablation; skip with --no-ablation).
* ours:     stages.train's loop with params.yaml's lora.layers (CPU default last:4: backward stops
            there, frozen lower layers run without autograd).

Throughput counts real (non-padding) tokens per second of optimizer steps, after ``--warmup`` steps
that are not timed. Both loops see the same examples (the first steps × batch examples of the
tier-stratified subset). Prints tokens/s and the ratio to naive; target ours/naive ≥ 1.5 (exit 1
when missed).

``--precision``: our loop (params' lora.layers) in fp32 and in bf16 autocast (``train.mixed_precision``
no vs bf16, bf16 base weights), built side by side and stepped **interleaved** (fp32 step s, bf16 step
s, …) on the same batches, so machine-load drift hits both alike. Prints real tokens/s of each, the
ratio, and the validation loss of each after the same optimizer steps (= equal tokens) on ``--val``
examples of the val split, both evaluated in fp32 and in bf16 autocast."""
from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET = 1.5


def ours(params, model: Path, data: Path, n_ex: int, steps: int, warmup: int) -> dict:
    """Time Trainer.train_step (the stage's own step) on the first examples of its plan."""
    from stages.train import Paths, Trainer

    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(base=model, train=data, val=data, out=Path(tmp) / "lora",
                      checkpoints=Path(tmp) / "ckpt", metrics=Path(tmp) / "m.json", live=Path(tmp) / "live")
        tr = Trainer(params, paths)
        tr.setup()
        tr.model.train()
        tokens, seconds = 0, 0.0
        for s in range(warmup + steps):
            _, tok, sec, _ = tr.train_step(s)
            if s >= warmup:
                tokens, seconds = tokens + tok, seconds + sec
        out = {"tokens": tokens, "seconds": seconds, "tok_s": tokens / seconds,
               "layers": str(params.lora.layers), "trainable": tr.trainable}
        del tr
        gc.collect()
        return out


def naive(params, model: Path, examples, steps: int, warmup: int) -> dict:
    """Stock HF Trainer + peft on padded batches; times each optimizer step with a callback."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from stages.training.lora_setup import apply_lora
    from stages.model.modeling import load_model, load_tokenizer

    tok = load_tokenizer(model)
    lp = params.lora.model_copy(update={"layers": "all"})
    peft_model, trainable, _ = apply_lora(load_model(model, dtype="float32", device="cpu"), lp)
    peft_model.train()
    rows = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": e.labels} for e in examples]
    bs = params.train.batch_size
    times: list[float] = []
    real_tokens: list[int] = []          # per batch, in step order (the collator runs once per batch)
    assert len(rows) == bs * (warmup + steps)

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=bs, max_steps=warmup + steps,
                                 learning_rate=params.train.learning_rate, warmup_steps=0, logging_strategy="no",
                                 save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
                                 seed=params.train.seed, disable_tqdm=True, remove_unused_columns=False)
        pad = DataCollatorForSeq2Seq(tok, padding="max_length", max_length=params.train.max_len,
                                     label_pad_token_id=-100)

        def collator(features):
            real_tokens.append(sum(len(f["input_ids"]) for f in features))
            return pad(features)

        trainer = Trainer(model=peft_model, args=args, train_dataset=rows, data_collator=collator, callbacks=[Clock()])
        trainer.train()
    timed = times[warmup:warmup + steps]
    tokens = sum(real_tokens[warmup:warmup + steps])
    del trainer, peft_model
    gc.collect()
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return {"tokens": tokens, "seconds": sum(timed), "tok_s": tokens / sum(timed), "layers": "all",
            "trainable": trainable, "padded_to": params.train.max_len}


def precision(p, model: Path, data: Path, val: Path, steps: int, warmup: int, n_val: int) -> int:
    """fp32 vs bf16 autocast training, interleaved step by step; val loss after equal tokens."""
    import torch

    from stages.model.modeling import cpu_has_native_bf16
    from stages.train import Paths, Trainer

    tmp = Path(tempfile.mkdtemp())
    trainers = {}
    for mp in ("no", "bf16"):
        q = p.model_copy(update={"train": p.train.model_copy(update={"mixed_precision": mp, "max_val_examples": n_val})})
        paths = Paths(base=model, train=data, val=val, out=tmp / mp / "lora", checkpoints=tmp / mp / "ckpt",
                      metrics=tmp / mp / "m.json", live=tmp / mp / "live")
        trainers[mp] = Trainer(q, paths)
        trainers[mp].setup()
        trainers[mp].model.train()
    print(f"native bf16 on this CPU: {cpu_has_native_bf16()}; prefix cache fp32 {trainers['no'].cache.enabled}, "
          f"bf16 {trainers['bf16'].cache.enabled}", flush=True)
    stats = {mp: {"tokens": 0, "seconds": 0.0, "step_s": []} for mp in trainers}
    for s in range(warmup + steps):
        for mp, tr in trainers.items():
            _, tok, sec, _ = tr.train_step(s)
            if s >= warmup:
                stats[mp]["tokens"] += tok
                stats[mp]["seconds"] += sec
                stats[mp]["step_s"].append(round(sec, 2))
    print(f"\n{'precision':<10} {'tokens':>8} {'seconds':>8} {'tok/s':>8} {'val loss':>9}  per-step seconds")
    for mp, tr in trainers.items():
        st = stats[mp]
        st["val_loss"] = tr.evaluate()
        st["tok_s"] = st["tokens"] / st["seconds"]
        print(f"{'fp32' if mp == 'no' else mp:<10} {st['tokens']:>8} {st['seconds']:>8.1f} {st['tok_s']:>8.1f} "
              f"{st['val_loss']:>9.4f}  {st['step_s']}")
    # the fp32-trained adapter scored under bf16 autocast and vice versa isolates evaluation precision
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cross = trainers["no"].evaluate()
    ratio = stats["bf16"]["tok_s"] / stats["no"]["tok_s"]
    print(f"\nbf16 / fp32 tokens/s = {ratio:.2f}x after {warmup + steps} steps each ({steps} timed, interleaved); "
          f"val loss fp32 {stats['no']['val_loss']:.4f} vs bf16 {stats['bf16']['val_loss']:.4f} "
          f"(Δ {stats['bf16']['val_loss'] - stats['no']['val_loss']:+.4f}); the fp32-trained adapter scored in "
          f"bf16 autocast: {cross:.4f}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "models/base")
    ap.add_argument("--data", type=Path, default=REPO / "data/split/train.jsonl")
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--steps", type=int, default=3, help="timed optimizer steps per loop")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--max-len", type=int, default=None)
    ap.add_argument("--no-ablation", action="store_true", help="skip ours with LoRA on all layers")
    ap.add_argument("--precision", action="store_true", help="fp32 vs bf16 autocast instead (interleaved)")
    ap.add_argument("--val", type=int, default=24, help="--precision: val examples for the loss comparison")
    ap.add_argument("--val-data", type=Path, default=REPO / "data/split/val.jsonl")
    args = ap.parse_args()

    from stages.common.config import load_params
    from stages.model.modeling import load_tokenizer, set_threads
    from stages.training.train_data import encode_records, read_split, stratified_subset

    p = load_params(args.params)
    upd = {"grad_accum": 1, "epochs": 1}
    if args.batch_size:
        upd["batch_size"] = args.batch_size
    if args.max_len:
        upd["max_len"] = args.max_len
    n_ex = p.train.batch_size if not args.batch_size else args.batch_size
    n_ex *= args.steps + args.warmup
    upd["max_train_examples"] = n_ex
    upd["max_val_examples"] = 0
    p = p.model_copy(update={"train": p.train.model_copy(update=upd)})
    set_threads(p.train.num_threads)
    if args.precision:
        sys.exit(precision(p, args.model, args.data, args.val_data, args.steps, args.warmup, args.val))

    recs = stratified_subset(read_split(args.data), n_ex, p.train.seed)
    examples, stats = encode_records(load_tokenizer(args.model), recs, p.prompt.system, p.train.max_len)
    print(f"model {args.model} | {len(examples)} examples from {args.data} | batch {p.train.batch_size} | "
          f"max_len {p.train.max_len} | {args.warmup} warm-up + {args.steps} timed steps | mean "
          f"{stats.tokens / len(examples):.0f} real tokens/example, {stats.truncated} truncated", flush=True)

    results = {}
    t0 = time.time()
    results["naive"] = naive(p, args.model, examples, args.steps, args.warmup)
    print(f"  naive HF Trainer+peft (all layers, padded): {results['naive']['tok_s']:.1f} tok/s", flush=True)
    if not args.no_ablation:
        p_all = p.model_copy(update={"lora": p.lora.model_copy(update={"layers": "all"})})
        results["ours-all"] = ours(p_all, args.model, args.data, n_ex, args.steps, args.warmup)
        print(f"  ours, all layers: {results['ours-all']['tok_s']:.1f} tok/s", flush=True)
    results["ours"] = ours(p, args.model, args.data, n_ex, args.steps, args.warmup)
    print(f"  ours, lora.layers={p.lora.layers}: {results['ours']['tok_s']:.1f} tok/s", flush=True)

    base = results["naive"]["tok_s"]
    print(f"\n{'loop':<10} {'layers':>8} {'trainable':>11} {'tokens':>8} {'seconds':>8} {'tok/s':>8} {'ratio':>6}")
    for name, r in results.items():
        print(f"{name:<10} {r['layers']:>8} {r['trainable']:>11,} {r['tokens']:>8.0f} {r['seconds']:>8.1f} "
              f"{r['tok_s']:>8.1f} {r['tok_s'] / base:>5.2f}x")
    ratio = results["ours"]["tok_s"] / base
    print(f"\nours / naive = {ratio:.2f}x (target ≥ {TARGET}x) — bench wall time {time.time() - t0:.0f}s")
    sys.exit(0 if ratio >= TARGET else 1)


if __name__ == "__main__":
    main()
