"""Finding and loading the official MultiTalk / Wan2.1 weights.

The release is three folders (MODEL_SPEC.md, "Released files"):

- `Wan2.1-I2V-14B-480P/`: the DiT in sharded safetensors (`diffusion_pytorch_model-0000N-of-00007.safetensors`
  + `config.json`), the VAE, T5 and CLIP `.pth` files and the two tokenizer folders;
- `MeiGen-MultiTalk/`: `multitalk.safetensors` (the audio adapter) and a replacement
  `diffusion_pytorch_model.safetensors.index.json` whose weight map covers the base shards and the adapter;
- `chinese-wav2vec2-base/`: a transformers Wav2Vec2 checkpoint.

The official instructions copy or link the two MultiTalk files into the Wan folder ("linked" layout). We also
accept the three folders side by side, untouched ("side by side" layout): the index then comes from
`MeiGen-MultiTalk/` and each shard is looked up in whichever folder holds it.

Loading materialises tensors straight into a model built on the meta device, one tensor at a time, so the
host never holds more than the model plus one tensor:

- safetensors are read with `readinto` into a fresh tensor per entry (the format is an 8-byte little-endian
  header length, a JSON header of dtype/shape/byte offsets, then raw little-endian data). `safe_open` maps the
  whole shard and every page it touched stays resident until the shard is closed, which adds a shard's worth
  of RSS on top of the model.
- `.pth` files use `torch.load(weights_only=True, mmap=True)`; tensors that need no cast and stay on the CPU
  are adopted without a copy (PyTorch's meta-device recipe: mmap + `assign`).

References:
- safetensors format: https://github.com/huggingface/safetensors#format
- PyTorch "Using the meta device / `load_state_dict(assign=True)`" tutorial (mmap + assign, no second copy).
- Wan-Video/Wan2.1 `wan/image2video.py` and MeiGen-AI/MultiTalk `wan/multitalk.py` for the dtype each
  component runs in (DiT bf16, T5 bf16, CLIP fp16, VAE fp32).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

WAN_DIR = "Wan2.1-I2V-14B-480P"
MULTITALK_DIR = "MeiGen-MultiTalk"
WAV2VEC_DIR = "chinese-wav2vec2-base"
DIT_INDEX = "diffusion_pytorch_model.safetensors.index.json"
DIT_CONFIG = "config.json"
MULTITALK_FILE = "multitalk.safetensors"
VAE_FILE = "Wan2.1_VAE.pth"
T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
T5_TOKENIZER = "google/umt5-xxl"
CLIP_FILE = "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"
CLIP_TOKENIZER = "xlm-roberta-large"
WAV2VEC_FILES = ("config.json", "preprocessor_config.json")
WAV2VEC_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
README_POINTER = 'see README.md, section "Official weights", for the download commands'

COMPONENTS = ("dit", "vae", "t5", "clip", "wav2vec")

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
_DTYPE_NAMES: dict[str, torch.dtype] = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
}

OFFICIAL_DIT_SHARDS = tuple(f"diffusion_pytorch_model-{i:05d}-of-00007.safetensors" for i in range(1, 8))
LAYOUTS_HELP = (
    "Expected one of these layouts under the weights root:\n"
    f"  (a) linked (the official instructions): {WAN_DIR}/ holds the Wan files plus {MULTITALK_FILE}\n"
    f"      and MultiTalk's {DIT_INDEX}, copied or linked from {MULTITALK_DIR}/;\n"
    f"      {WAV2VEC_DIR}/ beside it;\n"
    f"  (b) side by side, as downloaded: {WAN_DIR}/, {MULTITALK_DIR}/ ({MULTITALK_FILE}\n"
    f"      + its {DIT_INDEX}) and {WAV2VEC_DIR}/."
)


class WeightsError(RuntimeError):
    """A checkpoint file is unreadable or does not fit the model it is loaded into."""


class MissingWeightsError(WeightsError, FileNotFoundError):
    """One or more files of the official release are missing."""


# --------------------------------------------------------------------------------------------------------
# Dtype policy


@dataclass(frozen=True)
class DtypePolicy:
    """The dtype each component's weights are materialised in."""

    dit: torch.dtype = torch.bfloat16  # official `param_dtype`
    vae: torch.dtype = torch.float32  # the VAE runs fp32
    t5: torch.dtype = torch.bfloat16  # the release file is already bf16
    clip: torch.dtype = torch.float16  # official CLIP runs fp16
    wav2vec: torch.dtype = torch.float32  # features are computed in fp32

    def dtype_for(self, component: str) -> torch.dtype:
        if component not in COMPONENTS:
            raise ValueError(f"unknown weights component {component!r} (known: {', '.join(COMPONENTS)})")
        return getattr(self, component)

    def with_overrides(self, **overrides: torch.dtype | str) -> DtypePolicy:
        """A copy with some components changed; values may be dtypes or names like "bf16"."""
        unknown = sorted(set(overrides) - set(COMPONENTS))
        if unknown:
            raise ValueError(f"unknown weights component(s) {unknown} (known: {', '.join(COMPONENTS)})")
        return dataclasses.replace(self, **{k: parse_dtype(v) for k, v in overrides.items()})


DTYPE_POLICIES: dict[str, DtypePolicy] = {
    "official": DtypePolicy(),
    "fp32": DtypePolicy(*(torch.float32,) * len(COMPONENTS)),
}


def parse_dtype(value: torch.dtype | str) -> torch.dtype:
    """A torch dtype from a dtype or a name ("bf16", "fp16", "fp32", "bfloat16", ...)."""
    if isinstance(value, torch.dtype):
        return value
    dtype = _DTYPE_NAMES.get(str(value).lower().removeprefix("torch."))
    if dtype is None:
        raise ValueError(f"unknown dtype {value!r} (use one of: {', '.join(sorted(_DTYPE_NAMES))})")
    return dtype


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


def _find_in(name: str, search_dirs: Sequence[Path]) -> Path | None:
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
    found = {name: _find_in(name, dirs) for name in names}
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


def _read_entry(f, entry: TensorEntry, path: Path, key: str) -> torch.Tensor:
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
            target = key_map(key) if key_map else key
            if target is None:
                continue
            slot = slots.get(target)
            if slot is None:
                if strict:
                    raise WeightsError(
                        f"{path}: unexpected tensor {key!r}"
                        + (f" (mapped to {target!r})" if target != key else "")
                        + "; the model has no such parameter or buffer"
                    )
                continue
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
                tensor = _read_entry(f, entry, path, key)
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
        target = key_map(key) if key_map else key
        if target is None:
            continue
        slot = slots.get(target)
        if slot is None:
            if strict:
                raise WeightsError(f"{path}: unexpected tensor {key!r}; the model has no such parameter or buffer")
            continue
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


# --------------------------------------------------------------------------------------------------------
# The release layout


@dataclass(frozen=True)
class WeightFile:
    """One file (or folder) of the release, present or not."""

    component: str  # one of COMPONENTS
    role: str  # what it is, in words
    path: Path  # where it was found, or where it was expected
    present: bool
    note: str = ""  # why it counts as missing, or where it was also looked for


@dataclass(frozen=True)
class WeightsLayout:
    """Every resolved path of a complete official release."""

    root: Path
    kind: str  # "linked" or "side_by_side"
    wan_dir: Path
    multitalk_dir: Path | None  # None when the linked layout has no MeiGen-MultiTalk folder
    wav2vec_dir: Path
    dit_config: Path
    dit_index: Path
    dit_shards: Mapping[str, Path]  # shard file name -> path, every shard the index references
    vae: Path
    t5: Path
    t5_tokenizer: Path
    clip: Path
    clip_tokenizer: Path

    @property
    def dit_search_dirs(self) -> tuple[Path, ...]:
        """Folders the DiT shards are looked up in, in order."""
        return tuple(d for d in (self.multitalk_dir, self.wan_dir) if d is not None)

    def component_files(self, component: str) -> dict[str, Path]:
        """Logical name -> path of every file a component depends on (names are layout-independent)."""
        if component == "dit":
            named = {DIT_INDEX: self.dit_index, DIT_CONFIG: self.dit_config}
            named.update(self.dit_shards)
            return named
        if component == "vae":
            return {VAE_FILE: self.vae}
        if component == "t5":
            return {T5_FILE: self.t5, **_folder_files(self.t5_tokenizer, T5_TOKENIZER)}
        if component == "clip":
            return {CLIP_FILE: self.clip, **_folder_files(self.clip_tokenizer, CLIP_TOKENIZER)}
        if component == "wav2vec":
            return _folder_files(self.wav2vec_dir, WAV2VEC_DIR)
        raise ValueError(f"unknown weights component {component!r} (known: {', '.join(COMPONENTS)})")

    def fingerprint(self, component: str | None = None) -> str:
        """Cache-key fingerprint of one component's files, or of the whole release."""
        names = [component] if component is not None else list(COMPONENTS)
        files: dict[str, Path] = {}
        for name in names:
            files.update({f"{name}/{k}": v for k, v in self.component_files(name).items()})
        return fingerprint_files(files)


def _folder_files(folder: Path, label: str) -> dict[str, Path]:
    return {f"{label}/{p.relative_to(folder).as_posix()}": p for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def _locate_dirs(root: Path) -> tuple[Path, Path]:
    """(Wan folder, folder its siblings live in); `root` may be the weights root or the Wan folder itself."""
    root = Path(root)
    if (root / WAN_DIR).is_dir():
        return root / WAN_DIR, root
    looks_like_wan = any((root / n).exists() for n in (DIT_INDEX, VAE_FILE, T5_FILE, CLIP_FILE))
    if looks_like_wan and not (root / MULTITALK_DIR).is_dir():
        return root, root.parent
    return root / WAN_DIR, root


def _index_mentions_adapter(index: Path) -> bool:
    try:
        return MULTITALK_FILE in set(read_index(index).values())
    except WeightsError:
        return False


def _survey(root: Path) -> tuple[list[WeightFile], dict]:
    """Every expected file with its status, plus the resolved paths for a layout."""
    wan, base = _locate_dirs(root)
    mt = base / MULTITALK_DIR
    w2v = base / WAV2VEC_DIR
    entries: list[WeightFile] = []

    def add(component: str, role: str, path: Path, present: bool, note: str = "") -> None:
        entries.append(WeightFile(component, role, path, present, note))

    # DiT: which index applies decides the layout.
    mt_index, wan_index = mt / DIT_INDEX, wan / DIT_INDEX
    if mt_index.is_file():
        kind, index = "side_by_side", mt_index
    elif wan_index.is_file() and _index_mentions_adapter(wan_index):
        kind, index = "linked", wan_index
    else:
        kind, index = "unknown", None
    resolved: dict = {"kind": kind, "wan": wan, "base": base, "mt": mt if mt.is_dir() else None, "w2v": w2v}
    add("dit", "DiT config", wan / DIT_CONFIG, (wan / DIT_CONFIG).is_file())
    search = [d for d in (mt, wan) if d.is_dir()] or [wan]
    looked = ", ".join(str(d) for d in search)
    shard_source = index
    if index is None:
        note = (
            f"{wan_index} is the base Wan index (it does not reference {MULTITALK_FILE})"
            if wan_index.is_file()
            else f"also looked for {wan_index}"
        )
        add("dit", "MultiTalk DiT index", mt_index, False, note)
        if not wan_index.is_file():
            found = _find_in(MULTITALK_FILE, search)
            add(
                "dit", "MultiTalk audio adapter", found or mt / MULTITALK_FILE, found is not None, f"looked in {looked}"
            )
        shard_source = wan_index if wan_index.is_file() else None  # still check the base shards it lists
        if shard_source is None:  # no index at all: report the official shard names
            for name in OFFICIAL_DIT_SHARDS:
                found = _find_in(name, search)
                add("dit", "DiT shard", found or wan / name, found is not None, "official shard name")
    shards: dict[str, Path] = {}
    if shard_source is not None:
        try:
            listed = set(read_index(shard_source).values())
            if index is not None:
                add("dit", "MultiTalk DiT index", index, True)
        except WeightsError as e:
            listed = set()
            add("dit", "MultiTalk DiT index", shard_source, False, f"unreadable: {e}")
        for name in sorted(listed | {MULTITALK_FILE}):
            found = _find_in(name, search)
            role = "MultiTalk audio adapter" if name == MULTITALK_FILE else "DiT shard"
            why = f"referenced by {shard_source}" if name in listed else "needed by the MultiTalk index"
            add("dit", role, found or search[0] / name, found is not None, f"{why}; looked in {looked}")
            if found is not None:
                shards[name] = found
    resolved.update(index=index, shards=shards)

    for component, role, path in (
        ("vae", "VAE", wan / VAE_FILE),
        ("t5", "T5 encoder", wan / T5_FILE),
        ("clip", "CLIP image encoder", wan / CLIP_FILE),
    ):
        add(component, role, path, path.is_file())
    for component, role, folder in (
        ("t5", "T5 tokenizer folder", wan / T5_TOKENIZER),
        ("clip", "CLIP tokenizer folder", wan / CLIP_TOKENIZER),
    ):
        present = folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))
        add(component, role, folder, present, "" if present or not folder.is_dir() else "folder is empty")
    for name in WAV2VEC_FILES:
        add("wav2vec", f"wav2vec2 {name}", w2v / name, (w2v / name).is_file())
    weights = _find_in(WAV2VEC_WEIGHTS[0], [w2v]) or _find_in(WAV2VEC_WEIGHTS[1], [w2v])
    add(
        "wav2vec",
        "wav2vec2 weights",
        weights or w2v / WAV2VEC_WEIGHTS[1],
        weights is not None,
        "" if weights else f"or {WAV2VEC_WEIGHTS[0]}",
    )
    return entries, resolved


def check_weights(root: Path) -> list[WeightFile]:
    """Status of every file of the release under `root` (for `multitalk doctor`); never raises for absence."""
    entries, _ = _survey(Path(root))
    return entries


def missing_files(root: Path) -> list[WeightFile]:
    """The files of the release that are missing under `root` (empty when complete)."""
    return [e for e in check_weights(root) if not e.present]


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def format_missing(root: Path, missing: Sequence[WeightFile]) -> str:
    """The one message that lists every missing file, the expected layouts and where to get them."""
    root = Path(root)
    lines = [f"official weights under {root} are incomplete: {len(missing)} missing"]
    for e in missing:
        note = f" — {e.note}" if e.note else ""
        lines.append(f"  - {_display(e.path, root)} ({e.role}){note}")
    lines.append(LAYOUTS_HELP)
    lines.append(README_POINTER[0].upper() + README_POINTER[1:] + ".")
    return "\n".join(lines)


def resolve_weights(root: Path) -> WeightsLayout:
    """Every path of the official release under `root`, or one error listing everything that is missing.

    `root` is the folder holding `Wan2.1-I2V-14B-480P/` (and its siblings), or the Wan folder itself.
    """
    root = Path(root).expanduser()
    entries, r = _survey(root)
    missing = [e for e in entries if not e.present]
    if missing:
        raise MissingWeightsError(format_missing(root, missing))
    wan = r["wan"]
    layout = WeightsLayout(
        root=root,
        kind=r["kind"],
        wan_dir=wan,
        multitalk_dir=r["mt"],
        wav2vec_dir=r["w2v"],
        dit_config=wan / DIT_CONFIG,
        dit_index=r["index"],
        dit_shards=dict(r["shards"]),
        vae=wan / VAE_FILE,
        t5=wan / T5_FILE,
        t5_tokenizer=wan / T5_TOKENIZER,
        clip=wan / CLIP_FILE,
        clip_tokenizer=wan / CLIP_TOKENIZER,
    )
    logger.info("official weights resolved under %s (%s layout)", root, layout.kind)
    return layout


def load_dit_weights(
    model: nn.Module,
    layout: WeightsLayout,
    *,
    dtype: torch.dtype | None = torch.bfloat16,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Fill a meta-built DiT from the release (base shards + MultiTalk adapter, through the MultiTalk index)."""
    return load_safetensors_checkpoint(
        model, layout.dit_index, search_dirs=layout.dit_search_dirs, dtype=dtype, device=device
    )


# --------------------------------------------------------------------------------------------------------
# Fingerprint


FULL_HASH_LIMIT = 8 * 2**20  # files up to this size are hashed completely
SAMPLE_BLOCKS = 32  # otherwise: this many evenly spaced blocks of the data ...
SAMPLE_BLOCK_BYTES = 64 * 2**10  # ... of this size, plus the first and last block


def _sampled_digest(path: Path, size: int, start: int, blocks: int, block: int) -> str:
    """sha256 of evenly spaced blocks of [start, size) (both ends included)."""
    h = hashlib.sha256()
    span = size - start
    offsets = sorted({start + (span - block) * i // max(blocks - 1, 1) for i in range(blocks)}) if span > 0 else []
    with path.open("rb") as f:
        for off in offsets:
            f.seek(max(off, start))
            h.update(f.read(block))
    return h.hexdigest()


def _file_digest(path: Path, full_hash_limit: int, blocks: int, block: int) -> dict:
    size = path.stat().st_size
    record: dict = {"size": size}
    if path.name.endswith(".json") or size <= full_hash_limit:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(2**20), b""):
                h.update(chunk)
        record["sha256"] = h.hexdigest()
        return record
    data_start = 0
    if path.suffix == ".safetensors":
        raw, _, _ = read_safetensors_header(path)
        record["header_sha256"] = hashlib.sha256(raw).hexdigest()
        data_start = len(raw)
    # For .pth (a zip) the last block holds the central directory with every record's CRC-32.
    record["samples_sha256"] = _sampled_digest(path, size, data_start, blocks, block)
    return record


def fingerprint_files(
    files: Mapping[str, Path] | Iterable[Path],
    *,
    full_hash_limit: int = FULL_HASH_LIMIT,
    sample_blocks: int = SAMPLE_BLOCKS,
    sample_block_bytes: int = SAMPLE_BLOCK_BYTES,
) -> str:
    """A cheap, machine-independent content fingerprint of checkpoint files (sha256 hex).

    Per file: its name (a logical name, never an absolute path), size and either its full sha256 (json and
    small files) or its safetensors header plus evenly spaced data samples. No mtimes, so identical files give
    the same fingerprint anywhere. It tells releases and fine-tunes apart; it is not an integrity check (a
    single changed value inside a large file between samples goes unseen).
    """
    named = dict(files) if isinstance(files, Mapping) else {Path(p).name: Path(p) for p in files}
    records = {}
    for name in sorted(named):
        path = Path(named[name])
        if not path.is_file():
            raise MissingWeightsError(f"cannot fingerprint {path}: file not found; {README_POINTER}")
        records[name] = _file_digest(path, full_hash_limit, sample_blocks, sample_block_bytes)
    canonical = json.dumps({"version": 1, "files": records}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def weights_fingerprint(root: Path | WeightsLayout, component: str | None = None) -> str:
    """Fingerprint of the release (or one component of it) for cache keys."""
    layout = root if isinstance(root, WeightsLayout) else resolve_weights(Path(root))
    return layout.fingerprint(component)
