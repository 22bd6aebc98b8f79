"""Write a plain HF Qwen2 directory (models/merged) as one GGUF file for llama.cpp / Ollama, with the
``gguf`` package's writer and quantizer (the same library llama.cpp's converter uses).

* hyper-parameters: ``qwen2.*`` keys from config.json;
* tokenizer: the GPT-2-style BPE vocabulary (``tokenizer.ggml.model = gpt2``, pre-tokenizer ``qwen2``),
  token types (added special tokens = CONTROL, other added tokens = USER_DEFINED, ids the tokenizer
  does not use = UNUSED ``[PADn]`` up to ``vocab_size``), merges, bos/eos/pad ids and the chat
  template (``gguf.SpecialVocab`` reads tokenizer.json, tokenizer_config.json, chat_template.jinja);
* tensors: read one at a time from the safetensors shards; HF names mapped with
  ``gguf.get_tensor_name_map``. ``F16``: 2-D weights in float16; ``Q8_0``: 2-D weights quantized to
  8-bit blocks of 32 (``gguf.quants.quantize``), float16 where a row is not a multiple of 32;
  ``F32``: everything float32. Norms and biases stay float32 in all (llama.cpp's convention). A tied
  LM head is left out (llama.cpp and transformers tie ``output`` to ``token_embd`` when absent).
The output is deterministic: same input → same bytes (no timestamps, tensors in sorted order).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

QUANTS = ("F32", "F16", "Q8_0")


class ExportError(RuntimeError):
    pass


def _config(model_dir: Path) -> dict:
    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if cfg.get("model_type") != "qwen2":
        raise ExportError(f"{model_dir}/config.json: model_type {cfg.get('model_type')!r}; the GGUF export "
                          "supports qwen2 (the default base and Qwen2.5-7B-Instruct)")
    return cfg


def _rope_theta(cfg: dict) -> float:
    rope = cfg.get("rope_parameters") or {}
    return float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0)))


def _vocab(model_dir: Path, vocab_size: int):
    """(tokens, token types) for ids 0..vocab_size-1, as llama.cpp's converter builds them."""
    import gguf
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    reverse = {i: t for t, i in tok.get_vocab().items()}
    added = tok.get_added_vocab()
    decoder = tok.added_tokens_decoder
    if max(reverse) >= vocab_size:
        raise ExportError(f"{model_dir}: tokenizer has id {max(reverse)} >= config vocab_size {vocab_size}")
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif reverse[i] in added:
            tokens.append(reverse[i])
            special = decoder[i].special if i in decoder else False
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def _tensors(model_dir: Path):
    """(hf name, float32 numpy array) for every tensor, in sorted name order, one at a time."""
    from safetensors import safe_open

    from stages.model.safetensors_stream import model_shards

    names = []
    for shard in model_shards(model_dir)[0]:
        with safe_open(str(model_dir / shard), framework="pt") as f:
            names += [(k, shard) for k in f.keys()]
    for name, shard in sorted(names):
        with safe_open(str(model_dir / shard), framework="pt") as f:
            yield name, f.get_tensor(name).float().numpy()


def _encode(arr: np.ndarray, quant: str, is_weight_matrix: bool):
    """(data, raw_dtype or None) for the writer."""
    import gguf

    if not is_weight_matrix or quant == "F32":
        return arr.astype(np.float32), None
    if quant == "Q8_0" and arr.shape[-1] % gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0] == 0:
        return gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0
    return arr.astype(np.float16), None


def write_gguf(model_dir: str | Path, out_path: str | Path, quant: str, name: str = "medqa") -> dict:
    """Write ``out_path``; returns ``{"tensors", "quantized", "bytes"}``."""
    import gguf

    if quant not in QUANTS:
        raise ExportError(f"export.quants: unknown quantization {quant!r}; supported: {', '.join(QUANTS)}")
    model_dir, out_path = Path(model_dir), Path(out_path)
    cfg = _config(model_dir)
    n_layers = int(cfg["num_hidden_layers"])
    vocab_size = int(cfg["vocab_size"])
    tied = bool(cfg.get("tie_word_embeddings", False))

    w = gguf.GGUFWriter(str(out_path), "qwen2")
    w.add_name(name)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_context_length(int(cfg["max_position_embeddings"]))
    w.add_embedding_length(int(cfg["hidden_size"]))
    w.add_block_count(n_layers)
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    w.add_head_count(int(cfg["num_attention_heads"]))
    w.add_head_count_kv(int(cfg.get("num_key_value_heads", cfg["num_attention_heads"])))
    w.add_rope_freq_base(_rope_theta(cfg))
    w.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    w.add_file_type({"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
                     "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[quant])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    tokens, types = _vocab(model_dir, vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size)
    if not special.merges:
        raise ExportError(f"{model_dir}/tokenizer.json: no BPE merges found")
    if special.chat_template is None:
        raise ExportError(f"{model_dir}: no chat template (tokenizer_config.json or chat_template.jinja)")
    special.add_to_gguf(w, quiet=True)

    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, n_layers)
    count = quantized = 0
    for hf_name, arr in _tensors(model_dir):
        if tied and hf_name == "lm_head.weight":
            continue
        gg_name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gg_name is None:
            raise ExportError(f"{model_dir}: tensor {hf_name!r} has no GGUF name for qwen2")
        data, raw = _encode(arr, quant, arr.ndim == 2 and gg_name.endswith(".weight"))
        w.add_tensor(gg_name, data, raw_dtype=raw)
        count += 1
        quantized += raw is not None
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"tensors": count, "quantized_tensors": quantized, "bytes": out_path.stat().st_size}
