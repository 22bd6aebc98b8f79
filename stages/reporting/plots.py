"""The report's PNGs (matplotlib, Agg backend: offline, no display): training/validation loss
curves and per-tier bars, working tree vs the compared rev."""
from __future__ import annotations

from pathlib import Path

from stages.reporting.tables import TIER_METRICS


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_png(curves: dict[str, dict], path: Path) -> bool:
    """``curves``: {label: {"train": DataFrame(step, loss) | None, "val": …}}. False when no curve exists."""
    if not any(df is not None for c in curves.values() for df in c.values()):
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, split in zip(axes, ("train", "val")):
        for i, (label, c) in enumerate(curves.items()):     # later curves dashed: identical ones stay visible
            df = c.get(split)
            if df is not None and {"step", "loss"} <= set(df.columns):
                ax.plot(df["step"], df["loss"], marker="o" if split == "val" else None, ms=3, label=label,
                        linestyle="-" if i == 0 else "--")
        ax.set_title(f"{split} loss")
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def tier_png(new: dict | None, old: dict | None, rev_label: str, path: Path, metrics=TIER_METRICS) -> bool:
    """Per tier: base, tuned at the rev, tuned now, for each of ``metrics``. False without data."""
    if not new:
        return False
    plt = _plt()
    tiers = list(new)
    series = [("base", new, "base"), (f"tuned ({rev_label})", old or {}, "tuned"), ("tuned (working tree)", new, "tuned")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    width = 0.8 / len(series)
    for ax, m in zip(axes.flat, metrics):
        for j, (label, src, model) in enumerate(series):
            vals = [src.get(t, {}).get(model, {}).get(m) for t in tiers]
            xs = [i + j * width for i, v in enumerate(vals) if isinstance(v, (int, float))]
            ax.bar(xs, [v for v in vals if isinstance(v, (int, float))], width, label=label)
        ax.set_xticks([i + width for i in range(len(tiers))])
        ax.set_xticklabels(tiers, rotation=30, ha="right", fontsize=8)
        ax.set_title(m, fontsize=10)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
