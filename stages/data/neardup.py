"""Duplicate clusters with HF datatrove's MinHash pipeline: signatures → buckets → clusters, on disk.

Input: candidate shards ``<work>/sig_in/NNNNN.jsonl`` (``{"text": dupkeys.dedup_text, "id": n}``), in
corpus order. Each step runs on a datatrove executor: ``LocalPipelineExecutor`` here (``workers``
processes), ``SlurmPipelineExecutor``/``RayPipelineExecutor`` on a cluster with the same steps
(profiles: stages/data/dedup_cluster.yaml). Output: per shard, ``(doc, cluster)`` pairs sorted by doc
(``<work>/clusters/NNNNN.clusters``) for every record that has a duplicate; ``iter_clusters`` reads them.

Memory: signatures and buckets live on disk. The signature step sorts one shard's bucket file at a
time (``shard_rows × (rows+1) × 8`` bytes per bucket, 2 MB for 50k rows); the bucket step merges sorted
files with a heap; the cluster step (datatrove, world size 1) holds a union-find over the records
that have a duplicate, ~250 bytes each."""
from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Iterator

import numpy as np
import yaml
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupSignature)
from datatrove.pipeline.readers import JsonlReader
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer

from stages.data.dupkeys import BandConfig, bands

log = logging.getLogger("stages.data.neardup")


def minhash_config(cfg: BandConfig) -> MinhashConfig:
    return MinhashConfig(num_buckets=cfg.num_buckets, hashes_per_bucket=cfg.hashes_per_bucket, seed=cfg.seed,
                         hash_config=HashConfig(precision=64, hash_fc="xxhash"))


class CharTokenizer(WordTokenizer):
    """Characters as words (Chinese has no spaces); only here so datatrove loads no spaCy/NLTK model."""

    def word_tokenize(self, text: str) -> list[str]:
        return list(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


class QASignature(MinhashDedupSignature):
    """datatrove's signature step with the QA band signature of stages/data/dupkeys.py (answer- and
    question-focused families) instead of word n-gram MinHash; writing and sorting are datatrove's."""

    def __init__(self, output_folder: str, cfg: BandConfig):
        super().__init__(output_folder, config=minhash_config(cfg), language=CharTokenizer("zh"))
        self.cfg = cfg

    def get_shingles(self, text: str) -> np.ndarray:
        return np.array([text], dtype=object)      # non-empty marker; the band signature reads the text

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        return bands(shingles[0], self.cfg)


def _quiet_datatrove() -> None:
    from loguru import logger

    logger.remove()
    logger.add(lambda m: log.debug(m.rstrip()), level="WARNING")


PROFILES = Path(__file__).with_name("dedup_cluster.yaml")


def executors(work: Path, n_shards: int, cfg: BandConfig, workers: int, profile: str = "local") -> list:
    """The three steps as datatrove executors of ``profile`` (dedup_cluster.yaml), each depending on
    the one before."""
    prof = yaml.safe_load(PROFILES.read_text(encoding="utf-8"))[profile]
    sig, dups, clusters = work / "signatures", work / "buckets", work / "clusters"
    mc = minhash_config(cfg)
    steps = [("signatures", [JsonlReader(str(work / "sig_in"), glob_pattern="*.jsonl", add_file_path=False),
                             QASignature(str(sig), cfg)], n_shards),
             ("buckets", [MinhashDedupBuckets(str(sig), str(dups), config=mc)], mc.num_buckets),
             ("clusters", [MinhashDedupCluster(str(dups), str(clusters), config=mc, save_cluster_id=True)], 1)]
    out, prev = [], None
    for name, pipeline, tasks in steps:
        common = dict(tasks=tasks, logging_dir=str(work / "logs" / name), depends=prev)
        if prof["executor"] == "local":
            ex = LocalPipelineExecutor(pipeline, workers=max(1, workers), start_method="fork", skip_completed=False,
                                       **common)
        else:
            from datatrove.executor import SlurmPipelineExecutor

            mem = prof["cluster_mem_per_cpu_gb"] if name == "clusters" else prof["mem_per_cpu_gb"]
            ex = SlurmPipelineExecutor(pipeline, time=prof["time"], partition=prof["partition"],
                                       cpus_per_task=prof["cpus_per_task"], mem_per_cpu_gb=mem,
                                       venv_path=prof.get("venv_path"), job_name=f"{prof['job_name']}-{name}",
                                       slurm_logs_folder=str(work / "slurm_logs" / name), **common)
        out.append(ex)
        prev = ex
    return out


def run_pipeline(work: Path, n_shards: int, cfg: BandConfig, workers: int) -> Path:
    """Run signatures → buckets → clusters locally over ``n_shards`` shards; returns the clusters folder."""
    _quiet_datatrove()
    for ex in executors(work, n_shards, cfg, workers):
        ex.depends = None          # run in order here; the dependency chain is for cluster schedulers
        ex.run()
    return work / "clusters"


def iter_clusters(clusters: Path, shard: int) -> Iterator[tuple[int, int]]:
    """``(doc index in shard, cluster id)`` for the shard's records that have a duplicate, by doc."""
    path = clusters / f"{shard:06d}.clusters"
    if not path.exists():
        return
    with path.open("rb") as f:
        while chunk := f.read(8 * 4096):
            yield from struct.iter_unpack("<2I", chunk)


def main(argv=None) -> None:
    """Submit the three steps for prepared shards (``<work>/sig_in``) with a cluster profile."""
    import argparse

    from stages.common.config import load_params
    from stages.data.cleaning import band_config

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--profile", default="slurm")
    ap.add_argument("--work", required=True)
    ap.add_argument("--shards", type=int, required=True)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    cp = load_params(args.params).clean
    executors(Path(args.work), args.shards, band_config(cp), cp.workers, args.profile)[-1].run()  # runs its depends first


if __name__ == "__main__":
    main()
