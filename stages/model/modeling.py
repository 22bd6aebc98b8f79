"""Loading models and tokenizers for train/merge/evaluate/serve: dtype/device choice and dynamic
(unmerged) base + adapter loading for development."""
from __future__ import annotations

import os
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(name: str, device: str | None = None) -> torch.dtype:
    """``auto``: fp32 on CPU (bf16 matmuls are slow on most CPUs), bf16 on a GPU that supports it."""
    if name != "auto":
        return DTYPES[name]
    device = device or pick_device()
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def cpu_has_native_bf16() -> bool:
    """bf16 matrix multiplies in the CPU's hardware: x86 AMX or AVX512-BF16."""
    checks = [getattr(torch.cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(bool(c()) for c in checks if c is not None)


def resolve_inference_dtype(name: str, device: str | None = None) -> torch.dtype:
    """``model.dtype`` for the inference stages (predict_base, evaluate) and ``serve.dtype``: ``auto`` is
    bf16 wherever the hardware multiplies bf16 natively (on such CPUs a batch-8 decoding step costs
    about what a batch-1 step does; quality vs fp32: bench/serve_dtype.py), else fp32; on accelerators
    it is ``resolve_dtype``'s choice (bf16 on a GPU that has it). Storage (the base stage) and the
    training weights keep ``resolve_dtype``."""
    if name != "auto":
        return DTYPES[name]
    device = device or pick_device()
    if device != "cpu":
        return resolve_dtype("auto", device)
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


resolve_serving_dtype = resolve_inference_dtype     # serve/ name


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str | Path, dtype: "str | torch.dtype" = "auto", device: str | None = None,
               adapter: str | Path | None = None):
    """Load a causal LM from an HF directory (``dtype``: a params name or a torch dtype); with
    ``adapter`` the LoRA adapter is attached unmerged (dynamic loading for development)."""
    from transformers import AutoModelForCausalLM

    device = device or pick_device()
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else resolve_dtype(dtype, device)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.to(device)
    model.eval()
    return model


def set_threads(n: int) -> None:
    if n > 0:
        torch.set_num_threads(n)
    elif os.environ.get("OMP_NUM_THREADS") is None:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
