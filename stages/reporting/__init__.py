"""Review report (``make report`` → ``python -m stages.report``): the working tree vs a git rev, read
from git-tracked metrics/params/plots and ``dvc`` itself; rendered as Markdown with pandas tables and
matplotlib PNGs for a PR comment. Imports neither torch nor the pipeline stages, so CI can render it
from a checkout without pulling any model."""
