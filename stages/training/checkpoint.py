"""Resumable training checkpoints through ``accelerate`` (``save_state``/``load_state``: optimizer,
RNG states of every process, registered objects such as the LR scheduler and the train state).
Hooks replace accelerate's full-model save with the LoRA adapter only (peft state dict), so a
checkpoint of the 0.5B model is a few MB, not 2 GB.

Layout: ``<root>/<run key>/step-NNNNNN/``. The run key hashes everything that determines the result
(params, data files, base model files, code, world size), so a checkpoint from another config is
never resumed; a run that completes removes its own key directory."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

log = logging.getLogger("stages.train")
ADAPTER_FILE = "adapter_state.safetensors"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_dir_fingerprint(path: str | Path) -> dict:
    """Cheap identity of an HF model dir: config/resolution files by content, weight files by
    name, size and mtime (a rebuilt base invalidates checkpoints; that only costs a restart)."""
    path = Path(path)
    out = {}
    for f in sorted(path.iterdir()):
        if f.suffix in (".json", ".jinja") and f.stat().st_size < 50_000_000:
            out[f.name] = sha256_file(f)
        elif f.suffix in (".safetensors", ".bin", ".gguf"):
            st = f.stat()
            out[f.name] = f"{st.st_size}:{st.st_mtime_ns}"
    return out


def run_key(parts: dict) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def is_sharded(accelerator) -> bool:
    """FSDP / DeepSpeed: each process holds a shard of the model, and accelerate saves it natively."""
    return accelerator.distributed_type.value in ("FSDP", "DEEPSPEED")


class Checkpointer:
    """Save/find/load checkpoints of one run key. Call after ``accelerator.prepare``."""

    def __init__(self, accelerator, root: str | Path, key: str, peft_model, objects: list):
        self.acc, self.dir, self.peft_model = accelerator, Path(root) / key, peft_model
        self.root, self.key = Path(root), key
        for obj in objects:
            accelerator.register_for_checkpointing(obj)
        accelerator.register_save_state_pre_hook(self._save_hook)
        accelerator.register_load_state_pre_hook(self._load_hook)

    # accelerate hooks: adapter weights only, instead of the whole model's state dict
    def _save_hook(self, models, weights, output_dir):
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        if is_sharded(self.acc):         # accelerate saves/loads the sharded model itself
            return
        if self.acc.is_main_process:
            state = get_peft_model_state_dict(self.peft_model)
            save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(Path(output_dir) / ADAPTER_FILE))
        weights.clear()

    def _load_hook(self, models, input_dir):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        if is_sharded(self.acc):         # accelerate saves/loads the sharded model itself
            return
        state = load_file(str(Path(input_dir) / ADAPTER_FILE))
        result = set_peft_model_state_dict(self.peft_model, state)
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise RuntimeError(f"{input_dir}: checkpoint has unexpected adapter keys {unexpected[:3]}…")
        models.clear()

    def latest(self) -> tuple[int, Path] | None:
        found = []
        for d in self.dir.glob("step-*"):
            if d.is_dir() and d.name[5:].isdigit() and (d / "complete").exists():
                found.append((int(d.name[5:]), d))
        return max(found) if found else None

    def others(self) -> list[Path]:
        """Checkpoint dirs of other run keys (other configs), left for their own resume."""
        if not self.root.exists():
            return []
        return sorted(d for d in self.root.iterdir() if d.is_dir() and d.name != self.key and not d.name.startswith("."))

    def save(self, step: int, meta: dict) -> Path:
        """Write ``step-NNNNNN`` atomically (temp dir + rename), then drop older steps."""
        final = self.dir / f"step-{step:06d}"
        tmp = self.dir / f".tmp-step-{step:06d}"
        if self.acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            (self.dir / "run.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1, default=str),
                                               encoding="utf-8")
        self.acc.wait_for_everyone()
        self.acc.save_state(str(tmp))
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            (tmp / "complete").write_text(str(step))
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            for d in self.dir.glob("step-*"):
                if d != final:
                    shutil.rmtree(d, ignore_errors=True)
        self.acc.wait_for_everyone()
        return final

    def load(self, path: Path) -> None:
        self.acc.load_state(str(path))

    def clear(self) -> None:
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.acc.wait_for_everyone()
