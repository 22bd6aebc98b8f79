"""GPU path check: a tiny random-weight Qwen2 with the real tokenizer → stages.train (mixed_precision
auto: bf16 AMP on a bf16 GPU) → stages.merge (peft and streaming, each verified) → stages.predict_base,
each run as its stage CLI runs it, in a temp dir. Prints the device and precision train used, the val
losses, the merge verification and the generation speed; exits 1 if a stage fails or a merge does not
verify. Without a CUDA device it prints SKIPPED and exits 0 (`make bench`). CI has no GPU, so this is
run by hand on a GPU machine (stages/TRAINING.md "Checked on a GPU"):

    python bench/gpu_path.py                  # work dir: GC_DIR, else a new temp dir
    python -m pytest -m "not slow and not e2e" tests/test_train.py tests/test_merge.py tests/test_generate.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import make_tiny_model  # noqa: E402
from tests.test_train import cli_args, job, make_records, write_jsonl  # noqa: E402
from stages.model.bundled import cached_tokenizer_dir  # noqa: E402

W = Path(os.environ.get("GC_DIR") or tempfile.mkdtemp(prefix="gpu_path-"))
shutil.rmtree(W, ignore_errors=True)
W.mkdir(parents=True)
cuda = torch.cuda.is_available()
if not cuda and not os.environ.get("GC_ALLOW_CPU"):
    print("gpu_path: SKIPPED, no CUDA device (this checks the GPU path; GC_ALLOW_CPU=1 runs it on the CPU as a dry run)")
    sys.exit(0)
print("torch", torch.__version__, "cuda", cuda, torch.cuda.get_device_name(0) if cuda else "-",
      "bf16", cuda and torch.cuda.is_bf16_supported(), flush=True)
base = make_tiny_model(W / "base", cached_tokenizer_dir(), layers=4)
write_jsonl(W / "train.jsonl", make_records(40))
write_jsonl(W / "val.jsonl", make_records(10, offset=1000))
write_jsonl(W / "test.jsonl", make_records(6, offset=2000))
# test_train's tiny-model params (repo params.yaml + overrides), with the precision left to `auto`
job(W, base, W, lora__layers="last:2", train__mixed_precision="auto", train__num_threads=0, eval__max_examples=6)
env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
       "MEDQA_TIMING_DIR": str(W / "timing")}


failed = 0


def run(name, args):
    global failed
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", *args], cwd=W, env=env, capture_output=True, text=True)
    print(f"--- {name}: rc={p.returncode} {time.perf_counter() - t:.1f}s", flush=True)
    print(p.stdout[-2500:], p.stderr[-4000:], flush=True)
    failed += p.returncode != 0
    return p.returncode


P = ["--params", str(W / "params.yaml")]
rc = run("train", ["stages.train", *cli_args(W, base, W)])
if rc == 0:
    m = json.loads((W / "train.json").read_text())
    cfg = json.loads((W / "lora" / "training_config.json").read_text())
    print("TRAIN", {k: m[k] for k in ("val_loss_base", "val_loss_best", "steps")},
          "device", cfg.get("device"), "mixed_precision", cfg.get("mixed_precision"))
for method in ("peft", "streaming"):
    run(f"merge {method}", ["stages.merge", *P, "--base", str(base), "--adapter", str(W / "lora"), "--out",
                            str(W / f"merged_{method}"), "--metrics", str(W / f"merge_{method}.json"),
                            "--method", method, "--val", str(W / "val.jsonl"), "--no-progress"])
    f = W / f"merge_{method}.json"
    verify = json.loads(f.read_text())["verify"] if f.exists() else {"passed": False}
    failed += not verify.get("passed")
    print("MERGE", method, verify)
run("predict_base", ["stages.predict_base", "--model", str(W / "merged_peft"), "--split", str(W / "test.jsonl"),
                     "--out", str(W / "pred.jsonl"), "--no-progress"])
if (W / "pred.jsonl").exists():
    rows = [json.loads(x) for x in (W / "pred.jsonl").read_text().splitlines()]
    print("PRED", len(rows), "rows; first keys", sorted(rows[0]) if rows else None)
    t = W / "timing" / "predict_base.json"
    print("TIMING", t.read_text() if t.exists() else "-")
print("GPU path check:", "FAILED" if failed else "passed", f"({failed} failures)")
sys.exit(1 if failed else 0)
