"""Per-tier charts, viewable offline two ways:

- ``rows`` → a long-format JSON (tier, model, metric, value) that dvc.yaml declares as a plot with
  the grouped-bar template in .dvc/plots/ (``dvc plots show`` uses plots/offline.html, which
  inlines vega/vega-lite/vega-embed: no CDN);
- a matplotlib PNG with the same numbers (any image viewer; also listed in dvc.yaml plots)."""
from __future__ import annotations

from pathlib import Path

PLOT_METRICS = {
    "rougeL_char": "ROUGE-L (char)",
    "bleu_zh": "BLEU (zh)",
    "chrf": "chrF",
    "bertscore_f1": "BERTScore F1",
    "ppl_ref": "Reference perplexity",
    "reminder_rate": "Reminder rate (where required)",
    "emergency_guidance_rate": "Emergency guidance rate",
    "term_recall": "Term recall",
}
MODEL_ORDER = ("base", "tuned")


def rows(by_tier: dict) -> list[dict]:
    out = []
    for metric, label in PLOT_METRICS.items():
        for tier, group in by_tier.items():
            for model in MODEL_ORDER:
                if model in group and metric in group[model]:
                    out.append({"metric": label, "tier": tier, "model": model,
                                "value": round(float(group[model][metric]), 4)})
    return out


def write_png(by_tier: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = rows(by_tier)
    metrics = [label for label in PLOT_METRICS.values() if any(d["metric"] == label for d in data)]
    tiers = list(by_tier)
    models = [m for m in MODEL_ORDER if any(d["model"] == m for d in data)]
    cols = 4
    nrows = max(1, -(-len(metrics) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    width = 0.8 / max(1, len(models))
    for ax, metric in zip(axes.flat, metrics):
        for j, model in enumerate(models):
            vals = {d["tier"]: d["value"] for d in data if d["metric"] == metric and d["model"] == model}
            xs = [i + j * width for i, t in enumerate(tiers) if t in vals]
            ax.bar(xs, [vals[t] for t in tiers if t in vals], width, label=model)
            for i, t in enumerate(tiers):
                if t not in vals:  # undefined here (empty denominator): say so rather than show a 0-height bar
                    ax.text(i + j * width, 0, "n/a", ha="center", va="bottom", fontsize=6, color="gray")
        ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(tiers))])
        ax.set_xticklabels(tiers, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=10)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    if models:
        axes.flat[0].legend(fontsize=8)
    fig.suptitle("Evaluation by difficulty tier (base vs tuned)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
