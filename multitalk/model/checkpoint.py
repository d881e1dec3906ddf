"""Reading checkpoint files straight into a model built on the meta device.

Loading materialises tensors one at a time, so the host never holds more than the model plus one tensor:

- safetensors are read with `readinto` into a fresh tensor per entry (the format is an 8-byte little-endian
  header length, a JSON header of dtype/shape/byte offsets, then raw little-endian data). `safe_open` maps the
  whole shard and every page it touched stays resident until the shard is closed, which adds a shard's worth
  of RSS on top of the model.
- `.pth` files use `torch.load(weights_only=True, mmap=True)`; tensors that need no cast and stay on the CPU
  are adopted without a copy (PyTorch's meta-device recipe: mmap + `assign`).

References:
- safetensors format: https://github.com/huggingface/safetensors#format
- PyTorch "Using the meta device / `load_state_dict(assign=True)`" tutorial (mmap + assign, no second copy).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

README_POINTER = 'see README.md, section "Official weights", for the download commands'

_ST_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the reference implementation's own limit


class WeightsError(RuntimeError):
    """A checkpoint file is unreadable or does not fit the model it is loaded into."""


class MissingWeightsError(WeightsError, FileNotFoundError):
    """One or more files of the official release are missing."""


# --------------------------------------------------------------------------------------------------------
# Safetensors headers and indexes


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives inside a safetensors file."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int  # absolute byte offset in the file
    end: int


def read_safetensors_header(path: Path) -> tuple[bytes, dict[str, TensorEntry], dict[str, str]]:
    """(raw header bytes incl. the 8-byte length, entries by key, `__metadata__`) of a safetensors file."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise WeightsError(f"{path}: not a safetensors file (shorter than 8 bytes); re-download it")
        n = int.from_bytes(prefix, "little")
        if n > _MAX_HEADER_BYTES or 8 + n > size:
            raise WeightsError(
                f"{path}: header length {n} does not fit a {size}-byte file; the file is truncated or "
                "not safetensors, re-download it"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path}: unreadable safetensors header ({e}); re-download it") from e
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + n
    entries: dict[str, TensorEntry] = {}
    for key, info in header.items():
        dtype = _ST_DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise WeightsError(f"{path}: tensor {key!r} has unsupported dtype {info.get('dtype')!r}")
        shape = tuple(int(s) for s in info["shape"])
        begin, end = (int(o) for o in info["data_offsets"])
        numel = 1
        for s in shape:
            numel *= s
        nbytes = numel * dtype.itemsize
        if end - begin != nbytes or data_start + end > size:
            raise WeightsError(
                f"{path}: tensor {key!r} ({info['dtype']} {list(shape)}) has byte range [{begin}, {end}) that "
                f"does not match its size or the file ({size} bytes); the file is corrupt, re-download it"
            )
        entries[key] = TensorEntry(dtype, shape, data_start + begin, data_start + end)
    return prefix + raw, entries, metadata


def read_index(index_path: Path) -> dict[str, str]:
    """The `weight_map` of a sharded-checkpoint index: tensor key -> shard file name."""
    index_path = Path(index_path)
    try:
        data = json.loads(index_path.read_text())
    except FileNotFoundError:
        raise MissingWeightsError(f"checkpoint index {index_path} not found; {README_POINTER}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{index_path}: not valid JSON ({e}); re-download it") from e
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise WeightsError(f"{index_path}: no 'weight_map' object; this is not a sharded-checkpoint index")
    return {str(k): str(v) for k, v in weight_map.items()}


def find_in(name: str, search_dirs: Sequence[Path]) -> Path | None:
    for d in search_dirs:
        candidate = Path(d) / name
        if candidate.is_file():
            return candidate
    return None


def resolve_shards(index_path: Path, search_dirs: Sequence[Path] | None = None) -> dict[str, Path]:
    """Shard file name -> path for every shard the index references, looked up in `search_dirs` in order."""
    index_path = Path(index_path)
    dirs = list(search_dirs) if search_dirs else [index_path.parent]
    names = sorted(set(read_index(index_path).values()))
    found = {name: find_in(name, dirs) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        where = ", ".join(str(d) for d in dirs)
        raise MissingWeightsError(
            f"shard(s) {', '.join(missing)} referenced by {index_path} not found (looked in: {where}); {README_POINTER}"
        )
    return {name: path for name, path in found.items() if path is not None}


# --------------------------------------------------------------------------------------------------------
# Materialising tensors into a meta-built module


KeyMap = Callable[[str], str | None]


def prefix_map(prefix: str) -> KeyMap:
    """A key map that keeps keys under `prefix` (with the prefix removed) and drops every other key."""

    def mapping(key: str) -> str | None:
        return key[len(prefix) :] if key.startswith(prefix) else None

    return mapping


@dataclass
class _Slot:
    module: nn.Module
    name: str
    meta: torch.Tensor
    is_param: bool


def _slots(model: nn.Module) -> dict[str, _Slot]:
    """Every state-dict entry of `model` (parameters and persistent buffers) by key."""
    slots: dict[str, _Slot] = {}
    for prefix, module in model.named_modules(remove_duplicate=False):
        dot = f"{prefix}." if prefix else ""
        for name, p in module._parameters.items():
            if p is not None:
                slots[dot + name] = _Slot(module, name, p, True)
        for name, b in module._buffers.items():
            if b is not None and name not in module._non_persistent_buffers_set:
                slots[dot + name] = _Slot(module, name, b, False)
    return slots


def _target_dtype(source: torch.dtype, slot: _Slot, dtype: torch.dtype | None) -> torch.dtype:
    if source.is_floating_point and slot.meta.dtype.is_floating_point:
        return dtype if dtype is not None else slot.meta.dtype
    return slot.meta.dtype


def _assign(slot: _Slot, tensor: torch.Tensor) -> None:
    if slot.is_param:
        slot.module._parameters[slot.name] = nn.Parameter(tensor, requires_grad=slot.meta.requires_grad)
    else:
        slot.module._buffers[slot.name] = tensor


def _check_shape(key: str, shape: Sequence[int], slot: _Slot, source: str) -> None:
    if tuple(shape) != tuple(slot.meta.shape):
        raise WeightsError(
            f"{source}: tensor {key!r} has shape {list(shape)} but the model expects {list(slot.meta.shape)}; "
            "the model config does not match this checkpoint"
        )


def _report_missing(slots: Mapping[str, _Slot], loaded: set[str], sources: str) -> None:
    missing = sorted(set(slots) - loaded)
    if missing:
        shown = ", ".join(missing[:20]) + (f" ... ({len(missing)} in all)" if len(missing) > 20 else "")
        raise WeightsError(f"missing from {sources}: {shown}; the checkpoint does not cover this model")


def _check_complete(model: nn.Module, loaded: set[str], slots: Mapping[str, _Slot], sources: str) -> None:
    """Raise when a model entry was not loaded or anything is still on the meta device."""
    _report_missing(slots, loaded, sources)
    on_meta = [n for n, p in model.named_parameters() if p.is_meta]
    on_meta += [n for n, b in model.named_buffers() if b.is_meta]
    if on_meta:
        raise WeightsError(
            f"still on the meta device after loading {sources}: {', '.join(on_meta[:20])}; non-persistent "
            "buffers must be computed in forward or created outside the meta device"
        )


def read_entry(f, entry: TensorEntry, path: Path, key: str) -> torch.Tensor:
    """One tensor read straight into its own freshly allocated memory."""
    out = torch.empty(entry.shape, dtype=entry.dtype)
    nbytes = entry.end - entry.begin
    if nbytes == 0:
        return out
    view = memoryview(out.reshape(-1).view(torch.uint8).numpy())
    f.seek(entry.begin)
    filled = 0
    while filled < nbytes:  # one read() may return less than asked for (2 GiB syscall cap)
        n = f.readinto(view[filled:])
        if not n:
            raise WeightsError(f"{path}: file ends inside tensor {key!r}; the file is truncated, re-download it")
        filled += n
    return out


def _slot_for(
    key: str, key_map: KeyMap | None, slots: Mapping[str, _Slot], strict: bool, path: Path
) -> tuple[str, _Slot] | None:
    """The model slot a checkpoint tensor fills, None to skip it; strict loading rejects a tensor with no slot."""
    target = key_map(key) if key_map else key
    if target is None:
        return None
    slot = slots.get(target)
    if slot is None:
        if strict:
            raise WeightsError(
                f"{path}: unexpected tensor {key!r}"
                + (f" (mapped to {target!r})" if target != key else "")
                + "; the model has no such parameter or buffer"
            )
        return None
    return target, slot


def _plan_safetensors(
    files: Mapping[Path, Sequence[str] | None], key_map: KeyMap | None, slots: Mapping[str, _Slot], strict: bool
) -> tuple[list[tuple[Path, list[tuple[str, str, TensorEntry]]]], set[str]]:
    """Check every key against the model before any data is read: (per-file read list, loaded model keys)."""
    plan: list[tuple[Path, list[tuple[str, str, TensorEntry]]]] = []
    claimed: dict[str, Path] = {}
    for path, wanted in files.items():
        _, entries, _ = read_safetensors_header(path)
        keys = list(entries) if wanted is None else list(wanted)
        reads: list[tuple[str, str, TensorEntry]] = []
        for key in keys:
            entry = entries.get(key)
            if entry is None:
                raise WeightsError(f"{path}: tensor {key!r} is listed in the index but not in this shard")
            found = _slot_for(key, key_map, slots, strict, path)
            if found is None:
                continue
            target, slot = found
            if target in claimed:
                raise WeightsError(f"tensor {target!r} appears in both {claimed[target]} and {path}")
            claimed[target] = path
            _check_shape(key, entry.shape, slot, str(path))
            reads.append((key, target, entry))
        reads.sort(key=lambda r: r[2].begin)  # sequential reads
        plan.append((path, reads))
    return plan, set(claimed)


def _load_safetensors(
    model: nn.Module,
    files: Mapping[Path, Sequence[str] | None],
    *,
    dtype: torch.dtype | None,
    device: torch.device | str,
    key_map: KeyMap | None,
    strict: bool,
    sources: str,
) -> nn.Module:
    slots = _slots(model)
    plan, loaded = _plan_safetensors(files, key_map, slots, strict)
    if strict:
        _report_missing(slots, loaded, sources)
    if sys.byteorder != "little":
        raise WeightsError("safetensors data is little-endian; this loader needs a little-endian host")
    device = torch.device(device)
    for path, reads in plan:
        start = time.perf_counter()
        nbytes = 0
        with path.open("rb", buffering=0) as f:
            for key, target, entry in reads:
                slot = slots[target]
                tensor = read_entry(f, entry, path, key)
                tensor = tensor.to(dtype=_target_dtype(entry.dtype, slot, dtype), device=device)
                _assign(slot, tensor)
                nbytes += entry.end - entry.begin
        logger.info(
            "loaded %d tensors (%.1f MiB) from %s in %.2f s",
            len(reads),
            nbytes / 2**20,
            path.name,
            time.perf_counter() - start,
        )
    if strict:
        _check_complete(model, loaded, slots, sources)
    return model


def build_on_meta(factory: Callable[[], nn.Module]) -> nn.Module:
    """Run a module constructor on the meta device: shapes only, no memory, no random init."""
    with torch.device("meta"):
        return factory()


def load_safetensors_checkpoint(
    model: nn.Module,
    checkpoint: Path,
    *,
    search_dirs: Sequence[Path] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    key_map: KeyMap | None = None,
    strict: bool = True,
) -> nn.Module:
    """Fill `model` (built on meta) from a `.safetensors` file or a sharded-checkpoint index json.

    Shards are looked up in `search_dirs` (default: the index's folder). Floating tensors are cast to
    `dtype` (None: the dtype each meta tensor declares). With `strict`, every key must fit the model and every
    model entry must be covered; errors name the key and the file.
    """
    checkpoint = Path(checkpoint)
    if checkpoint.suffix == ".json":
        weight_map = read_index(checkpoint)
        shard_paths = resolve_shards(checkpoint, search_dirs)
        per_file: dict[Path, list[str]] = {}
        for key, shard in weight_map.items():
            per_file.setdefault(shard_paths[shard], []).append(key)
        files: dict[Path, Sequence[str] | None] = dict(per_file)
    else:
        if not checkpoint.is_file():
            raise MissingWeightsError(f"checkpoint {checkpoint} not found; {README_POINTER}")
        files = {checkpoint: None}
    return _load_safetensors(
        model, files, dtype=dtype, device=device, key_map=key_map, strict=strict, sources=str(checkpoint)
    )


def read_pth_state_dict(source: Path | str | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A flat official state dict from a `.pth` file (memory-mapped, tensors only), or a mapping as is."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if not path.is_file():
        raise MissingWeightsError(f"checkpoint {path} not found; {README_POINTER}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # torch raises several types for a damaged zip or pickle
        raise WeightsError(f"{path}: cannot be read as a torch state dict ({e}); re-download it") from e
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a flat dict of tensors (a state dict), got {type(state).__name__}")
    return dict(state)


def load_pth_checkpoint(
    model: nn.Module,
    path: Path,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    key_map: KeyMap | None = None,
    strict: bool = True,
) -> nn.Module:
    """Fill `model` (built on meta) from a `.pth` state dict, memory-mapped.

    Tensors that already have the target dtype and stay on the CPU are adopted without a copy (they stay
    backed by the mapped file, copy-on-write); the others are cast or moved one at a time.
    """
    path = Path(path)
    state = read_pth_state_dict(path)
    slots = _slots(model)
    device = torch.device(device)
    todo: list[tuple[str, str]] = []
    for key in state:
        found = _slot_for(key, key_map, slots, strict, path)
        if found is None:
            continue
        target, slot = found
        _check_shape(key, state[key].shape, slot, str(path))
        todo.append((key, target))
    loaded = {t for _, t in todo}
    if strict:
        _report_missing(slots, loaded, str(path))
    start = time.perf_counter()
    for key, target in todo:
        slot = slots[target]
        source = state[key]
        _assign(slot, source.to(dtype=_target_dtype(source.dtype, slot, dtype), device=device))
    del state
    logger.info("loaded %d tensors from %s in %.2f s", len(todo), path.name, time.perf_counter() - start)
    if strict:
        _check_complete(model, loaded, slots, str(path))
    return model
