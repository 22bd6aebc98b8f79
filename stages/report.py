"""Review report: the working tree vs a git rev (default HEAD) as Markdown + PNGs for a PR comment.

    python -m stages.report [--rev HEAD] [--out artifacts/report] [--no-exps]
    make report REV=main

Sections: `dvc params diff`; the quality-metrics diff without timing noise; per-tier and safety
tables; loss and per-tier plots (PNG); the experiments of `dvc exp show` with a best-by-metric line;
this workspace's untracked timings. Reads git-tracked files and the dvc CLI only (no model, no torch),
so CI renders it from a plain checkout: .github/workflows/review-report.yml."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stages.reporting.compose import build
from stages.reporting.sources import ReportError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default="HEAD", help="git rev to compare the working tree with (default HEAD)")
    ap.add_argument("--out", type=Path, default=Path("artifacts/report"), help="folder for report.md + PNGs")
    ap.add_argument("--no-exps", action="store_true", help="leave out the `dvc exp show` comparison")
    ap.add_argument("--repo", type=Path, default=Path("."), help="repository root (default: cwd)")
    args = ap.parse_args(argv)
    try:
        md = build(args.repo, args.rev, args.out, experiments=not args.no_exps)
    except ReportError as err:
        print(f"report: {err}", file=sys.stderr)
        return 2
    path = args.out / "report.md"
    path.write_text(md + "\n", encoding="utf-8")
    print(md)
    print(f"\nwritten: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
