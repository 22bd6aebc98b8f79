"""Serving precision: fp32 / bf16 / fp16 weights, or int8 dynamic quantization of the Linear layers
(``serve.dtype: int8``), and the ``auto`` rule.

int8 = ``torch.ao.quantization.quantize_dynamic`` on the ``nn.Linear`` layers: weights stored int8
with one scale per output channel (``per_channel_dynamic_qconfig``; one scale per tensor is much worse
on Qwen2's outlier channels), activations quantized on the fly per batch, int32 accumulate
(fbgemm/x86 kernels, VNNI where the CPU has it). Embeddings and norms stay fp32; the LM head is
quantized too unless ``include_head=False`` (see ``INT8_HEAD``, serve/README.md *int8 serving*). CPU only. torch
2.13 marks the ``torch.ao`` quantized-tensor API deprecated in favour of torchao (not installed
here); the call still works and its warnings are silenced only around the conversion.

``auto`` (measured by bench/serve_int8.py on this 2-core AMX CPU; see serve/README.md *int8*):
  * accelerators → ``resolve_dtype('auto')`` (bf16 where supported);
  * CPU with native bf16 (AMX / AVX512-BF16) → bf16: fastest per token and quality equal to fp32;
  * any other CPU → fp32. int8 is never chosen by ``auto``: it is smaller and faster than fp32 but
    doubles the reference perplexity (40 → 92 measured), so it is an explicit choice for
    memory- or CPU-bound hosts.
"""
from __future__ import annotations

import warnings

import torch

from stages.model.modeling import DTYPES, load_model, pick_device, resolve_serving_dtype

SERVING_DTYPES = ("auto", "float32", "bfloat16", "float16", "int8")


def resolve_serving_precision(name: str, device: str | None = None) -> str:
    """``serve.dtype`` → one of ``float32``/``bfloat16``/``float16``/``int8`` (see module doc)."""
    if name not in SERVING_DTYPES:
        raise ValueError(f"serve.dtype must be one of {SERVING_DTYPES}, got {name!r}")
    device = device or pick_device()
    if name == "int8":
        if device != "cpu":
            raise ValueError(f"serve.dtype int8 is CPU-only (dynamic quantization), not for device {device!r}")
        return "int8"
    return str(resolve_serving_dtype(name, device)).replace("torch.", "")


# Quantize the LM head too: measured (bench/serve_int8.py, 0.5B base, 10 questions) 46.3 vs 9.8 new
# tokens/s with the head left fp32 (the 151,936 × 896 head dominates a decoding step), weights 991 vs
# 1380 MB, reference perplexity 92.5 vs 91.2 — the head costs no extra quality.
INT8_HEAD = True


def quantize_int8(model, include_head: bool = INT8_HEAD):
    """Replace the ``nn.Linear`` layers (all but the LM head unless ``include_head``) with dynamically
    quantized int8 ones, in place; then hand the freed fp32 memory back to the OS. Returns the model."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    head = model.get_output_embeddings()
    spec = {name: per_channel_dynamic_qconfig for name, mod in model.named_modules()
            if isinstance(mod, torch.nn.Linear) and (include_head or mod is not head)}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=r".*deprecated.*")
        quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
    _release_freed_memory()
    return model


def _release_freed_memory() -> None:
    """glibc keeps freed heap pages; malloc_trim returns them (the replaced fp32 weights)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def is_int8(model) -> bool:
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    return any(isinstance(m, QLinear) for m in model.modules())


def load_serving_model(path, name: str, device: str | None = None, adapter=None, include_head: bool = INT8_HEAD):
    """Load for serving at ``serve.dtype`` ``name``; returns ``(model, resolved precision name)``."""
    device = device or pick_device()
    precision = resolve_serving_precision(name, device)
    if precision == "int8":
        model = load_model(path, torch.float32, device, adapter=adapter)
        if adapter is not None:
            model = model.merge_and_unload()      # quantized LoRA layers cannot stay unmerged
        return quantize_int8(model, include_head), precision
    return load_model(path, DTYPES[precision], device, adapter=adapter), precision


def weight_bytes(model) -> int:
    """Bytes held by the weights: parameters and buffers plus the packed int8 weights of quantized
    Linear layers (which are neither)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    for m in model.modules():
        if isinstance(m, QLinear):
            w, b = m._packed_params._weight_bias()
            total += w.numel() * w.element_size() + (b.numel() * b.element_size() if b is not None else 0)
    return total
