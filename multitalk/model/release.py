"""Finding the official MultiTalk / Wan2.1 release on disk, and its fingerprint.

The release is three folders (as the official download lays it out):

- `Wan2.1-I2V-14B-480P/`: the DiT in sharded safetensors (`diffusion_pytorch_model-0000N-of-00007.safetensors`
  + `config.json`), the VAE, T5 and CLIP `.pth` files and the two tokenizer folders;
- `MeiGen-MultiTalk/`: `multitalk.safetensors` (the audio adapter) and a replacement
  `diffusion_pytorch_model.safetensors.index.json` whose weight map covers the base shards and the adapter;
- `chinese-wav2vec2-base/`: a transformers Wav2Vec2 checkpoint.

The official instructions copy or link the two MultiTalk files into the Wan folder ("linked" layout). We also
accept the three folders side by side, untouched ("side by side" layout): the index then comes from
`MeiGen-MultiTalk/` and each shard is looked up in whichever folder holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from multitalk.model.checkpoint import (
    README_POINTER,
    MissingWeightsError,
    WeightsError,
    find_in,
    load_safetensors_checkpoint,
    read_index,
)
from multitalk.model.fingerprint import fingerprint_files

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

COMPONENTS = ("dit", "vae", "t5", "clip", "wav2vec")

OFFICIAL_DIT_SHARDS = tuple(f"diffusion_pytorch_model-{i:05d}-of-00007.safetensors" for i in range(1, 8))
LAYOUTS_HELP = (
    "Expected one of these layouts under the weights root:\n"
    f"  (a) linked (the official instructions): {WAN_DIR}/ holds the Wan files plus {MULTITALK_FILE}\n"
    f"      and MultiTalk's {DIT_INDEX}, copied or linked from {MULTITALK_DIR}/;\n"
    f"      {WAV2VEC_DIR}/ beside it;\n"
    f"  (b) side by side, as downloaded: {WAN_DIR}/, {MULTITALK_DIR}/ ({MULTITALK_FILE}\n"
    f"      + its {DIT_INDEX}) and {WAV2VEC_DIR}/."
)


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
            found = find_in(MULTITALK_FILE, search)
            add(
                "dit", "MultiTalk audio adapter", found or mt / MULTITALK_FILE, found is not None, f"looked in {looked}"
            )
        shard_source = wan_index if wan_index.is_file() else None  # still check the base shards it lists
        if shard_source is None:  # no index at all: report the official shard names
            for name in OFFICIAL_DIT_SHARDS:
                found = find_in(name, search)
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
            found = find_in(name, search)
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
    weights = find_in(WAV2VEC_WEIGHTS[0], [w2v]) or find_in(WAV2VEC_WEIGHTS[1], [w2v])
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


def weights_fingerprint(root: Path | WeightsLayout, component: str | None = None) -> str:
    """Fingerprint of the release (or one component of it) for cache keys."""
    layout = root if isinstance(root, WeightsLayout) else resolve_weights(Path(root))
    return layout.fingerprint(component)
