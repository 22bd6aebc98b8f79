"""Assemble the review report: working tree vs ``rev`` — params diff, quality-metrics diff without
timing noise, per-tier and safety tables, loss/per-tier PNGs, N-experiment comparison, and the
untracked timings of this workspace in a section of their own."""
from __future__ import annotations

from pathlib import Path

from stages.reporting import sources as src
from stages.reporting import tables
from stages.reporting.experiments import best_line, exp_table, load_experiments
from stages.reporting.plots import loss_png, tier_png

EVAL, BY_TIER = "metrics/eval.json", "metrics/eval_by_tier.json"
SAFETY = "metrics/safety.json"     # safety_eval stage (before it existed, these keys sat in eval.json)
LOSS = {"train": "dvclive/plots/metrics/train/loss.tsv", "val": "dvclive/plots/metrics/val/loss.tsv"}


def build(cwd: Path, rev: str, out_dir: Path, experiments: bool = True, timing_dir: Path | None = None) -> str:
    """Write the PNGs into ``out_dir`` and return the Markdown (image links relative to ``out_dir``)."""
    from stages.common.timing import read_timings, timing_dir as default_timing_dir

    cwd, out_dir = Path(cwd), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sha = src.resolve_rev(rev, cwd)
    label = f"{rev} ({sha[:7]})" if not sha.startswith(rev) else sha[:7]
    md = [f"# Review report: working tree vs `{label}`", ""]

    md += ["## Params (`dvc params diff`)", "", tables.markdown(tables.params_table(src.params_diff(rev, cwd)),
                                                                 "_no params changed_"), ""]
    changed, same, noise = tables.metrics_table(src.metrics_diff(rev, cwd))
    md += ["## Quality metrics (`dvc metrics diff`)", "", tables.markdown(changed, "_no metric changed_"), "",
           f"{same} metrics unchanged; {noise} timing/resource keys left out (they are not quality)."
           if noise else f"{same} metrics unchanged.", ""]

    new_tier, old_tier = src.read_json(BY_TIER, cwd), src.read_json(BY_TIER, cwd, rev)
    md += ["## Per tier (tuned vs base, and vs the rev)", "", tables.markdown(tables.tier_table(new_tier, old_tier)), ""]
    if tier_png(new_tier, old_tier, rev, out_dir / "per_tier.png"):
        md += ["![per-tier metrics](per_tier.png)", ""]

    new_eval = {**(src.read_json(EVAL, cwd) or {}), **(src.read_json(SAFETY, cwd) or {})}
    old_eval = {**(src.read_json(EVAL, cwd, rev) or {}), **(src.read_json(SAFETY, cwd, rev) or {})}
    md += ["## Safety", "", tables.markdown(tables.safety_table(new_eval, old_eval), "_no safety metrics_"), ""]

    curves = {"working tree": {k: src.read_tsv(p, cwd) for k, p in LOSS.items()},
              rev: {k: src.read_tsv(p, cwd, rev) for k, p in LOSS.items()}}
    if loss_png(curves, out_dir / "loss.png"):
        md += ["## Loss curves", "", "![train and validation loss](loss.png)", ""]

    if experiments:
        exps = load_experiments(src.exp_show(cwd))
        if any(e["kind"] == "experiment" for e in exps):
            md += ["## Experiments (`dvc exp show`)", "", tables.markdown(exp_table(exps)), "", best_line(exps), ""]

    timings = read_timings(timing_dir or cwd / default_timing_dir())
    if timings:
        md += ["## Timings", "", "This workspace's last run of each stage on this machine (artifacts/timing/, "
               "untracked: not compared, not part of any DVC hash).", "",
               tables.markdown(tables.timing_table(timings)), ""]
    return "\n".join(md)
