"""merge stage: models/base + models/lora → models/merged (a plain HF directory), verified.

``merge.method``: ``peft`` (load base + adapter, ``merge_and_unload``, save) or ``streaming``
(stages.model.merge_streaming: tensor by tensor, never the whole model in memory). ``merge.scale`` ∈ [0, 1]
interpolates (0 = base, 1 = full adapter) in both. Both keep the base dtype (``merge.dtype: auto``)
and copy tokenizer, chat template and generation config. The merged model is then compared with
base + adapter on a few val prompts (stages.model.merge_verify) and the stage fails on drift. Everything
is written into a temp dir next to the output and renamed only after verification passed.

    python -m stages.merge [--method streaming] [--scale 0.5] [--base DIR] [--adapter DIR] [--out DIR] [--metrics F]

With ``--out`` somewhere else (a trial strength, a bench) and no ``--metrics``, the metrics go beside that output
(``<out>.merge.json``), so the pipeline's metrics/merge.json keeps describing models/merged.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import resource
import shutil
import sys
import time
from pathlib import Path

from stages.common.config import load_params
from stages.common.jsonio import atomic_dir, write_json
from stages.common.timing import write_timing

log = logging.getLogger("stages.merge")

BASE, ADAPTER, OUT = Path("models/base"), Path("models/lora"), Path("models/merged")
METRICS, VAL = Path("metrics/merge.json"), Path("data/split/val.jsonl")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".index.json")
NOT_COPIED = {"resolved.json", "merge_info.json"}     # describe the base / a previous merge, not this one


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1 << 20) if sys.platform == "darwin" else rss / 1024, 1)


def base_dtype_name(base_dir: Path) -> str:
    """The float dtype holding most of the base's weight bytes, read from shard headers."""
    from stages.model.safetensors_stream import model_shards, read_header

    names = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}
    size: dict[str, int] = {}
    for f in model_shards(base_dir)[0]:
        for t in read_header(base_dir / f).tensors.values():
            size[t.dtype] = size.get(t.dtype, 0) + t.nbytes
    floats = {k: v for k, v in size.items() if k in ("F64", "F32", "BF16", "F16")}
    if not floats:
        raise ValueError(f"{base_dir}: no floating-point weights (quantised base?) — cannot merge into it")
    top = max(floats, key=floats.get)
    if top not in names:
        raise ValueError(f"{base_dir}: base weights are {top}; supported: {sorted(names.values())}")
    return names[top]


def copy_support_files(base_dir: Path, out_dir: Path) -> list[str]:
    """Tokenizer files, chat template, generation config, config… everything except weights,
    without overwriting what the merge already wrote."""
    copied = []
    for p in sorted(base_dir.iterdir()):
        if not p.is_file() or p.name in NOT_COPIED or p.name.endswith(WEIGHT_SUFFIXES):
            continue
        if not (out_dir / p.name).exists():
            shutil.copy2(p, out_dir / p.name)
            copied.append(p.name)
    return copied


def set_config_dtype(out_dir: Path, dtype: str) -> None:
    cfg_path = out_dir / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    key = "torch_dtype" if "torch_dtype" in cfg and "dtype" not in cfg else "dtype"
    if cfg.get(key) != dtype:
        cfg[key] = dtype
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def merge_peft(base_dir: Path, adapter_dir: Path, out_dir: Path, scale: float, base_dtype: str, out_dtype: str,
               max_shard_size: str) -> dict:
    """peft's own path: whole model in memory, ``merge_and_unload``, save. (Not ``safe_merge``: it rounds
    the delta to the base dtype before adding; the plain merge adds it in fp32 like the streaming merge.
    The NaN check it would do is done here afterwards.)"""
    import torch

    from stages.model.adapters import load_with_adapter
    from stages.model.modeling import DTYPES

    model = load_with_adapter(base_dir, adapter_dir, scale=scale, dtype=base_dtype, device="cpu")
    model = model.merge_and_unload(progressbar=True)
    bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"merged weights have NaN/inf values in {bad[:5]}: the adapter is corrupt or diverged")
    if out_dtype != base_dtype:
        model.to(DTYPES[out_dtype])
    model.save_pretrained(out_dir, max_shard_size=max_shard_size)
    return {"tensors": len(model.state_dict())}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def clean_stale_temps(out: Path) -> None:
    """Remove temp dirs of merges that were killed (their pid no longer runs)."""
    import psutil

    for p in [*out.parent.glob(f".{out.name}.tmp-*"), *out.parent.glob(f".{out.name}.old-*")]:
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            log.warning("removing %s left by a killed merge (pid %s)", p, pid)
            shutil.rmtree(p, ignore_errors=True)


def run_merge(*, base: Path, adapter: Path, out: Path, method: str, scale: float, dtype: str,
              max_shard_size: str, questions: list[str], prompt_source: str, system: str, tolerance: float,
              metrics_path: Path | None, progress: bool = True) -> dict:
    """Merge, verify (unless ``questions`` is empty), then atomically publish ``out``.
    Metrics are written whether it passes or fails; seconds and peak RSS go to
    artifacts/timing/merge.json (run-to-run noise, not content)."""
    from stages.model.adapters import ADAPTER_WEIGHTS, read_adapter_config
    from stages.model.modeling import DTYPES, pick_device

    t0 = time.time()
    base, adapter, out = Path(base), Path(adapter), Path(out)
    if not (base / "config.json").exists():
        raise FileNotFoundError(f"base model directory {base} has no config.json (run the base stage first)")
    read_adapter_config(adapter)
    clean_stale_temps(out)
    b_dtype = base_dtype_name(base)
    o_dtype = b_dtype if dtype == "auto" else dtype
    metrics: dict = {"method": method, "scale": scale, "base": str(base), "adapter": str(adapter), "out": str(out),
                     "base_dtype": b_dtype, "dtype": o_dtype,
                     "adapter_sha256": file_sha256(adapter / ADAPTER_WEIGHTS)}
    timing: dict = {}
    try:
        with atomic_dir(out) as tmp:
            log.info("merging %s + %s → %s (method %s, scale %g, %s)", base, adapter, out, method, scale, o_dtype)
            if method == "streaming":
                from stages.model.merge_streaming import merge_streaming

                stats = merge_streaming(base, adapter, tmp, scale, None if dtype == "auto" else DTYPES[o_dtype],
                                        progress=progress)
            elif method == "peft":
                stats = merge_peft(base, adapter, tmp, scale, b_dtype, o_dtype, max_shard_size)
            else:
                raise ValueError(f"merge.method must be peft or streaming, got {method!r}")
            metrics["copied_files"] = copy_support_files(base, tmp)
            set_config_dtype(tmp, o_dtype)
            metrics.update(stats)
            timing["seconds_merge"] = round(time.time() - t0, 2)
            timing["peak_rss_merge_mb"] = peak_rss_mb()
            write_json(tmp / "merge_info.json", {k: metrics[k] for k in
                                                 ("method", "scale", "base", "adapter", "adapter_sha256", "dtype")})
            log.info("merged in %.1fs (peak RSS %.0f MB)", timing["seconds_merge"], timing["peak_rss_merge_mb"])
            t1 = time.time()
            metrics["prompt_source"] = prompt_source
            if questions:
                from stages.model.merge_verify import verify_merge

                # fp32 on any device: the check measures the merge, not bf16 arithmetic noise
                metrics["verify"] = verify_merge(tmp, base, adapter, scale, questions, system, tolerance,
                                                 device=pick_device(), dtype="float32")
                log.info("verified: max |Δlogit| %.3g ≤ %g, argmax agreement %.4f (adapter moves logits by up to %.3g)",
                         metrics["verify"]["max_abs_logit_diff"], tolerance, metrics["verify"]["argmax_agreement"],
                         metrics["verify"]["adapter_effect_max_abs"])
            else:
                log.warning("verification SKIPPED (no prompts): the merged model is unchecked")
                metrics["verify"] = None
            timing["seconds_verify"] = round(time.time() - t1, 2)
        metrics["verified"] = metrics["verify"] is not None
        metrics["passed"] = True
    except BaseException as err:          # also Ctrl-C: record that this attempt did not finish
        from stages.model.merge_verify import MergeVerificationError

        metrics["passed"] = False
        metrics["error"] = f"{type(err).__name__}: {err}"
        if isinstance(err, MergeVerificationError) and err.result is not None:
            metrics["verify"] = err.result
        raise
    finally:
        timing["seconds"] = round(time.time() - t0, 2)
        timing["peak_rss_mb"] = peak_rss_mb()
        if metrics_path is not None:
            write_json(metrics_path, metrics)
            write_timing("merge", timing)
    return metrics


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--base", type=Path, default=BASE)
    ap.add_argument("--adapter", type=Path, default=ADAPTER)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--metrics", type=Path, default=None,
                    help=f"default {METRICS} for the default --out, else <out>.merge.json")
    ap.add_argument("--method", choices=["peft", "streaming"], help="override merge.method")
    ap.add_argument("--scale", type=float, help="override merge.scale (0..1)")
    ap.add_argument("--val", type=Path, default=VAL, help="questions for verification (first merge.verify_prompts)")
    ap.add_argument("--question", action="append", help="verify on this question instead (repeatable)")
    ap.add_argument("--no-verify", action="store_true", help="skip verification (recorded; for benchmarks)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    p = load_params(args.params)
    scale = p.merge.scale if args.scale is None else args.scale
    if not 0.0 <= scale <= 1.0:
        ap.error(f"--scale must be in [0, 1], got {scale}")
    if args.no_verify or p.merge.verify_prompts == 0:
        questions, source = [], "none (verification skipped)"
    else:
        from stages.model.merge_verify import verification_questions

        questions, source = verification_questions(p.merge.verify_prompts, args.val, args.question)
    return run_merge(base=args.base, adapter=args.adapter, out=args.out, method=args.method or p.merge.method,
                     scale=scale, dtype=p.merge.dtype, max_shard_size=p.model.max_shard_size, questions=questions,
                     prompt_source=source, system=p.prompt.system, tolerance=p.merge.verify_tolerance,
                     metrics_path=metrics_path(args.out, args.metrics), progress=not args.no_progress)


def metrics_path(out: Path, metrics: Path | None) -> Path:
    """Where the merge metrics go: ``metrics`` when given; metrics/merge.json for the pipeline's own output;
    beside any other output, so a trial merge cannot overwrite the metrics of models/merged."""
    if metrics is not None:
        return metrics
    return METRICS if out.resolve() == OUT.resolve() else out.with_name(out.name + ".merge.json")


if __name__ == "__main__":
    main()
