"""base stage: resolve ``model.base`` into a plain HF directory ``models/base``
(safetensors, tokenizer with chat template and finite model_max_length, generation config).

Accepted specs: ``bundled:<name>`` (weights in an installed pip package; the offline default),
a local directory, or a hub id (real ``from_pretrained``; offline and not cached → clear error)."""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from stages.common.config import load_params
from stages.common.jsonio import atomic_dir, write_json
from stages.common.timing import write_timing

log = logging.getLogger("stages.base")
OUT = Path("models/base")
DEFAULT_MAX_LEN = 32768


class BaseModelError(RuntimeError):
    pass


def _load(spec: str, dtype, trust_remote_code: bool, workdir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec.startswith("bundled:"):
        from stages.model.bundled import materialise_gguf

        gguf = materialise_gguf(spec, workdir)
        log.info("joined %s (%.0f MB, sha256 verified); de-quantising GGUF…", gguf.name, gguf.stat().st_size / 1e6)
        tok = AutoTokenizer.from_pretrained(str(workdir), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(workdir), gguf_file=gguf.name, dtype=dtype)
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        return model, tok, {"kind": "bundled", "gguf_sha256_verified": True}
    local = Path(spec)
    if local.is_dir():
        if not (local / "config.json").exists():
            raise BaseModelError(f"model.base={spec!r}: directory has no config.json (not an HF model dir)")
        kw = {"trust_remote_code": trust_remote_code}
        return (AutoModelForCausalLM.from_pretrained(str(local), dtype=dtype, **kw),
                AutoTokenizer.from_pretrained(str(local), **kw), {"kind": "local"})   # spec holds the path as given
    if spec.count("/") != 1 or spec.startswith(("/", ".")):
        raise BaseModelError(
            f"model.base={spec!r} is neither 'bundled:<name>', an existing directory, nor a hub id 'org/name'")
    try:
        from huggingface_hub import snapshot_download

        snap = snapshot_download(spec, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py"])
    except Exception as err:  # offline, not cached, gated, typo…
        raise BaseModelError(
            f"could not fetch {spec!r} from the hub ({type(err).__name__}: {err}). If this machine is offline, "
            f"download it elsewhere (`huggingface-cli download {spec} --local-dir /path/to/model`), copy it here and "
            f"set model.base to that directory, or set HF_HUB_OFFLINE=1 with the model in the HF cache.") from None
    kw = {"trust_remote_code": trust_remote_code}
    return (AutoModelForCausalLM.from_pretrained(snap, dtype=dtype, **kw), AutoTokenizer.from_pretrained(snap, **kw),
            {"kind": "hub", "repo": spec, "snapshot": Path(snap).name})


def materialise(spec: str, out: Path = OUT, dtype_name: str = "auto", max_shard_size: str = "2GB",
                trust_remote_code: bool = False) -> dict:
    from stages.model.modeling import resolve_dtype

    t0 = time.time()
    dtype = resolve_dtype(dtype_name)
    with tempfile.TemporaryDirectory() as work:
        model, tok, info = _load(spec, dtype, trust_remote_code, Path(work))
        if tok.chat_template is None:
            raise BaseModelError(f"{spec}: tokenizer has no chat template; use an instruct/chat model")
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        if not tok.model_max_length or tok.model_max_length > 10**7:
            tok.model_max_length = int(getattr(model.config, "max_position_embeddings", DEFAULT_MAX_LEN) or DEFAULT_MAX_LEN)
        gen = model.generation_config
        if gen.pad_token_id is None:
            gen.pad_token_id = tok.pad_token_id
        im_end = tok.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tok.get_vocab() else None
        eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
        eos = [e for e in eos if e is not None]
        for e in (tok.eos_token_id, im_end):
            if e is not None and e not in eos:
                eos.append(e)
        gen.eos_token_id = eos
        gen.do_sample = False
        for k in ("temperature", "top_p", "top_k"):
            setattr(gen, k, None)
        with atomic_dir(out) as tmp:
            model.save_pretrained(tmp, max_shard_size=max_shard_size)
            tok.save_pretrained(tmp)
            gen.save_pretrained(tmp)
    n_params = sum(p.numel() for p in model.parameters())
    # content only (no time, no absolute path): an unchanged rebuild is byte-identical
    info.update({"spec": spec, "dtype": str(dtype).replace("torch.", ""), "params": n_params,
                 "model_max_length": tok.model_max_length})
    write_json(out / "resolved.json", info)
    seconds = time.time() - t0
    write_timing("base", {"seconds": seconds})
    log.info("wrote %s: %s params, %s, %.1fs", out, f"{n_params:,}", info["dtype"], seconds)
    return info


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = load_params(args.params)
    materialise(p.model.base, Path(args.out), p.model.dtype, p.model.max_shard_size, p.model.trust_remote_code)


if __name__ == "__main__":
    main()
