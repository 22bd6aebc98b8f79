"""Tensor-at-a-time safetensors I/O for merging models bigger than RAM.

``safetensors.torch.save_file`` needs every tensor of a shard in memory at once, and one
``safe_open`` handle keeps each touched page of its memory map resident (measured: reading a
1.9 GB shard tensor by tensor through one handle peaks at +1.9 GB RSS). So this module

- lists a model directory's shards from its index (or the single ``model.safetensors``),
- parses a shard header (names, dtypes, shapes, byte offsets) without touching the data,
- copies an untouched tensor's bytes file-to-file in small chunks,
- opens one short-lived ``safe_open`` handle per tensor that must be computed on,
- writes an output shard whose header is known up front, then each tensor's bytes in turn.

Peak memory is therefore one tensor (plus what is computed from it), not one shard."""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
COPY_CHUNK = 16 << 20

# safetensors dtype code <-> torch dtype
ST_TO_TORCH = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
for _code, _name in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"), ("U16", "uint16"),
                     ("U32", "uint32"), ("U64", "uint64")):
    if hasattr(torch, _name):
        ST_TO_TORCH[_code] = getattr(torch, _name)
TORCH_TO_ST = {v: k for k, v in ST_TO_TORCH.items()}
FLOAT_CODES = {"F64", "F32", "F16", "BF16"}


class ShardFormatError(ValueError):
    pass


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str                  # safetensors code, e.g. "F32"
    shape: tuple[int, ...]
    begin: int                  # byte offsets relative to the data section
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class ShardHeader:
    path: Path
    data_start: int             # absolute file offset of the data section
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]


def read_header(path: str | Path) -> ShardHeader:
    """Parse a safetensors header (8-byte little-endian length + JSON) without reading data."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ShardFormatError(f"{path}: too short to be a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n > 100 << 20:
            raise ShardFormatError(f"{path}: header length {n} is implausible (corrupt file?)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ShardFormatError(f"{path}: header is not valid JSON: {err}") from None
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, spec in header.items():
        begin, end = spec["data_offsets"]
        tensors[name] = TensorInfo(name, spec["dtype"], tuple(spec["shape"]), begin, end)
    return ShardHeader(path, 8 + n, tensors, metadata)


def model_shards(model_dir: str | Path) -> tuple[list[str], dict | None]:
    """Weight files of an HF model directory, in order, and its parsed index (None for one file)."""
    model_dir = Path(model_dir)
    index_path = model_dir / INDEX_NAME
    if index_path.exists():
        index = json.loads(index_path.read_text(encoding="utf-8"))
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ShardFormatError(f"{index_path}: no weight_map")
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not (model_dir / f).exists()]
        if missing:
            raise ShardFormatError(f"{index_path}: lists missing shard files {missing}")
        return files, index
    if (model_dir / SINGLE_NAME).exists():
        return [SINGLE_NAME], None
    others = sorted(p.name for p in model_dir.glob("*.bin")) if model_dir.is_dir() else []
    hint = f" (found {others}: convert to safetensors first)" if others else ""
    raise ShardFormatError(f"{model_dir}: no {SINGLE_NAME} or {INDEX_NAME}{hint}")


def check_index_matches(model_dir: Path, files: list[str], index: dict | None,
                        headers: dict[str, ShardHeader]) -> None:
    """Every tensor the index names is in the shard it names, and no shard holds unlisted tensors."""
    if index is None:
        return
    by_file: dict[str, set[str]] = {}
    for name, fname in index["weight_map"].items():
        by_file.setdefault(fname, set()).add(name)
    for fname in files:
        have = set(headers[fname].tensors)
        want = by_file.get(fname, set())
        if have != want:
            extra, missing = sorted(have - want)[:5], sorted(want - have)[:5]
            raise ShardFormatError(f"{model_dir / INDEX_NAME}: index and {fname} disagree "
                                   f"(in file only: {extra}, in index only: {missing})")


def load_tensor(header: ShardHeader, name: str) -> torch.Tensor:
    """One tensor through a short-lived ``safe_open`` handle (its map is released on return).
    The result is a private copy, safe to modify in place."""
    from safetensors import safe_open

    with safe_open(str(header.path), framework="pt") as f:
        return f.get_tensor(name).clone()


def copy_tensor_bytes(header: ShardHeader, name: str, out: BinaryIO) -> int:
    """Copy one tensor's bytes unchanged, chunk by chunk (memory: one chunk)."""
    info = header.tensors[name]
    left = info.nbytes
    with open(header.path, "rb") as f:
        f.seek(header.data_start + info.begin)
        while left:
            chunk = f.read(min(COPY_CHUNK, left))
            if not chunk:
                raise ShardFormatError(f"{header.path}: truncated inside tensor {name!r}")
            out.write(chunk)
            left -= len(chunk)
    return info.nbytes


def nbytes_of(dtype: str, shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n * torch.empty((), dtype=ST_TO_TORCH[dtype]).element_size()


class StreamingShardWriter:
    """Write a safetensors file whose tensor names, dtypes and shapes are known before any data:
    the header goes first, then ``write_tensor``/``copy_from`` fill it in the declared order."""

    def __init__(self, path: str | Path, specs: list[tuple[str, str, tuple[int, ...]]],
                 metadata: dict[str, str] | None = None):
        self.path = Path(path)
        self._order = [s[0] for s in specs]
        self._expected = {}
        header: dict = {}
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        offset = 0
        for name, dtype, shape in specs:
            if dtype not in ST_TO_TORCH:
                raise ShardFormatError(f"{name}: unsupported dtype {dtype}")
            n = nbytes_of(dtype, shape)
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
            self._expected[name] = (dtype, tuple(shape), n)
            offset += n
        self.total_bytes = offset
        blob = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        blob += b" " * (-len(blob) % 8)        # same 8-byte alignment the reference writer uses
        self._f = open(self.path, "wb")
        self._f.write(struct.pack("<Q", len(blob)))
        self._f.write(blob)
        self._next = 0

    def _claim(self, name: str) -> tuple[str, tuple[int, ...], int]:
        if self._next >= len(self._order) or self._order[self._next] != name:
            want = self._order[self._next] if self._next < len(self._order) else "<none>"
            raise ShardFormatError(f"{self.path}: expected tensor {want!r} next, got {name!r}")
        self._next += 1
        return self._expected[name]

    def write_tensor(self, name: str, tensor: torch.Tensor) -> None:
        dtype, shape, n = self._claim(name)
        if TORCH_TO_ST.get(tensor.dtype) != dtype or tuple(tensor.shape) != shape:
            raise ShardFormatError(f"{name}: declared {dtype}{list(shape)}, got {tensor.dtype}{list(tensor.shape)}")
        if n:
            data = tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy()
            self._f.write(memoryview(data))

    def copy_from(self, header: ShardHeader, name: str) -> None:
        dtype, shape, n = self._claim(name)
        src = header.tensors[name]
        if (src.dtype, src.shape, src.nbytes) != (dtype, shape, n):
            raise ShardFormatError(f"{name}: source {src.dtype}{list(src.shape)} does not match the declared layout")
        copy_tensor_bytes(header, name, self._f)

    def close(self) -> None:
        if self._f.closed:
            return
        done = self._next == len(self._order)
        self._f.close()
        if not done:
            raise ShardFormatError(f"{self.path}: closed after {self._next} of {len(self._order)} tensors")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._f.close()
