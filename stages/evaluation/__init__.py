"""Evaluation internals: eval-set selection, prediction, metrics, plots."""
