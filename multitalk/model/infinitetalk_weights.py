"""Finding and loading the official InfiniteTalk weights: the Wan2.1 base + one InfiniteTalk adapter file.

The official release is the MultiTalk base with another adapter:

    Wan2.1-I2V-14B-480P/            the 7 DiT shards + config.json, VAE, T5, CLIP (as for MultiTalk)
    chinese-wav2vec2-base/          the audio encoder (as for MultiTalk)
    InfiniteTalk/                   `huggingface-cli download MeiGen-AI/InfiniteTalk --local-dir InfiniteTalk`
        single/infinitetalk.safetensors      one on-screen speaker
        multi/infinitetalk.safetensors       two on-screen speakers (L-RoPE)
        quant_models/infinitetalk_{single,multi}_{fp8,int8}.safetensors (+ a same-named .json quantisation map)

The official loader reads the 7 base shards by name, then the InfiniteTalk file, into one dict with `dict.update`
in that order (later files override earlier keys) and loads it with `load_state_dict(strict=True)`. Neither
repository documents the key list of the InfiniteTalk files, so we take every key of the InfiniteTalk file and let
it win over the base shards; the union must be exactly the DiT's key set (the MultiTalk one, 1633 keys).
Base keys the adapter overrides are logged. Tensors stream into a meta-built model one at a time, as for MultiTalk.

Quantised files (`quant_models/`) are optimum-quanto state dicts (`*._data` / `*._scale` tensors plus a
`{module: {"weights": "qfloat8_e4m3fn" | "qint8", ...}}` map, loaded officially with `quanto.requantize`) of the
whole merged DiT. Our loader does not read that format: `quantize: fp8 | int8` quantises the bf16 DiT while
loading instead (the pipeline's runtime options, as for MultiTalk); `quant_file` only says where they would be.

References: MeiGen-AI/InfiniteTalk `wan/multitalk.py` (`InfiniteTalkPipeline.__init__`), README "Model Preparation".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from multitalk.model import checkpoint as C
from multitalk.model import release as R

logger = logging.getLogger(__name__)

INFINITETALK_DIR = "InfiniteTalk"
ADAPTER_FILE = "infinitetalk.safetensors"
VARIANTS = ("single", "multi")  # one speaker / two speakers on screen
QUANT_DIR = "quant_models"
QUANT_FORMATS = ("fp8", "int8")
LAYOUT_HELP = (
    "Expected under the weights root (InfiniteTalk reads the MultiTalk base files and one InfiniteTalk file):\n"
    f"  {R.WAN_DIR}/ with the 7 DiT shards, {R.DIT_CONFIG}, VAE, T5 and CLIP files;\n"
    f"  {R.WAV2VEC_DIR}/;\n"
    f"  {INFINITETALK_DIR}/single/{ADAPTER_FILE} (one speaker) and/or {INFINITETALK_DIR}/multi/{ADAPTER_FILE}\n"
    "  (two speakers), as `huggingface-cli download MeiGen-AI/InfiniteTalk` lays them out."
)
README_POINTER = 'see README.md, section "InfiniteTalk weights", for the download commands'


def variant_for(persons: int) -> str:
    """The adapter a scene needs: `single` for one on-screen speaker, `multi` for two."""
    if persons not in (1, 2):
        raise ValueError(f"InfiniteTalk renders one or two on-screen speakers, got {persons}")
    return "single" if persons == 1 else "multi"


def _root_dirs(root: Path) -> tuple[Path, Path]:
    """(Wan folder, folder its siblings live in), as for MultiTalk."""
    return R._locate_dirs(Path(root))


def adapter_path(root: Path, variant: str) -> Path:
    """Where the `variant` InfiniteTalk file is expected under the weights root."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown InfiniteTalk variant {variant!r} (known: {', '.join(VARIANTS)})")
    _, base = _root_dirs(root)
    return base / INFINITETALK_DIR / variant / ADAPTER_FILE


def quant_file(root: Path, variant: str, fmt: str) -> Path:
    """Where the official quantised DiT of `variant` in `fmt` (fp8, int8) is expected."""
    if fmt not in QUANT_FORMATS:
        raise ValueError(f"unknown quantisation {fmt!r} (known: {', '.join(QUANT_FORMATS)})")
    _, base = _root_dirs(root)
    return base / INFINITETALK_DIR / QUANT_DIR / f"infinitetalk_{variant}_{fmt}.safetensors"


def available_variants(root: Path) -> tuple[str, ...]:
    """The InfiniteTalk adapter files present under `root`, in `VARIANTS` order."""
    return tuple(v for v in VARIANTS if adapter_path(root, v).is_file())


@dataclass(frozen=True)
class InfiniteTalkLayout(R.WeightsLayout):
    """A resolved release: the MultiTalk base paths plus the InfiniteTalk file of one variant."""

    variant: str = "single"
    adapter: Path = Path()
    base_shards: tuple[Path, ...] = ()  # the 7 official shards, in order

    def component_files(self, component: str) -> dict[str, Path]:
        if component != "dit":
            return super().component_files(component)
        named = {R.DIT_CONFIG: self.dit_config}
        named.update({p.name: p for p in self.base_shards})
        named[f"{INFINITETALK_DIR}/{self.variant}/{ADAPTER_FILE}"] = self.adapter
        return named


def survey(root: Path, variant: str) -> list[R.WeightFile]:
    """Every file an InfiniteTalk `variant` render needs, present or not (never raises for absence)."""
    root = Path(root)
    wan, _ = _root_dirs(root)
    entries = [e for e in R.check_weights(root) if e.component != "dit"]  # VAE, T5, CLIP, wav2vec: as MultiTalk
    dit = [R.WeightFile("dit", "DiT config", wan / R.DIT_CONFIG, (wan / R.DIT_CONFIG).is_file())]
    for name in R.OFFICIAL_DIT_SHARDS:
        dit.append(R.WeightFile("dit", "DiT shard", wan / name, (wan / name).is_file(), "official shard name"))
    adapter = adapter_path(root, variant)
    others = [v for v in available_variants(root) if v != variant]
    note = f"only {', '.join(others)} present" if others else ""
    dit.append(R.WeightFile("dit", f"InfiniteTalk {variant} adapter", adapter, adapter.is_file(), note))
    return dit + entries


def format_missing(root: Path, missing: Sequence[R.WeightFile]) -> str:
    """The one message listing every missing file, the expected layout and where to get them."""
    lines = [f"InfiniteTalk weights under {root} are incomplete: {len(missing)} missing"]
    for e in missing:
        note = f" — {e.note}" if e.note else ""
        lines.append(f"  - {R._display(e.path, Path(root))} ({e.role}){note}")
    lines.append(LAYOUT_HELP)
    lines.append(README_POINTER[0].upper() + README_POINTER[1:] + ".")
    return "\n".join(lines)


def resolve_infinitetalk_weights(root: Path, variant: str) -> InfiniteTalkLayout:
    """Every path of an InfiniteTalk `variant` render under `root`, or one error listing everything missing."""
    root = Path(root).expanduser()
    if variant not in VARIANTS:
        raise ValueError(f"unknown InfiniteTalk variant {variant!r} (known: {', '.join(VARIANTS)})")
    missing = [e for e in survey(root, variant) if not e.present]
    if missing:
        raise C.MissingWeightsError(format_missing(root, missing))
    wan, base = _root_dirs(root)
    shards = tuple(wan / name for name in R.OFFICIAL_DIT_SHARDS)
    adapter = adapter_path(root, variant)
    layout = InfiniteTalkLayout(
        root=root,
        kind=f"infinitetalk-{variant}",
        wan_dir=wan,
        multitalk_dir=None,
        wav2vec_dir=base / R.WAV2VEC_DIR,
        dit_config=wan / R.DIT_CONFIG,
        dit_index=adapter,  # no index: the shards are read by their official names, then the adapter
        dit_shards={**{p.name: p for p in shards}, f"{variant}/{ADAPTER_FILE}": adapter},
        vae=wan / R.VAE_FILE,
        t5=wan / R.T5_FILE,
        t5_tokenizer=wan / R.T5_TOKENIZER,
        clip=wan / R.CLIP_FILE,
        clip_tokenizer=wan / R.CLIP_TOKENIZER,
        variant=variant,
        adapter=adapter,
        base_shards=shards,
    )
    logger.info("InfiniteTalk %s weights resolved under %s", variant, root)
    return layout


def merge_plan(files: Sequence[Path]) -> tuple[dict[Path, list[str]], dict[str, Path]]:
    """Which keys to read from which file when later files override earlier ones (`dict.update` order).

    Returns ({file: its keys that survive}, {overridden key: the file whose copy was dropped}).
    """
    owner: dict[str, Path] = {}
    overridden: dict[str, Path] = {}
    for path in files:
        _, entries, _ = C.read_safetensors_header(path)
        for key in entries:
            if key in owner:
                overridden[key] = owner[key]
            owner[key] = path
    plan: dict[Path, list[str]] = {path: [] for path in files}
    for key, path in owner.items():
        plan[path].append(key)
    return plan, overridden


def load_infinitetalk_dit(
    model: nn.Module,
    layout: InfiniteTalkLayout,
    *,
    dtype: torch.dtype | None = torch.bfloat16,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Fill a meta-built DiT from the 7 base shards + the InfiniteTalk file, the adapter's keys winning; strict."""
    files = [*layout.base_shards, layout.adapter]
    plan, overridden = merge_plan(files)
    if overridden:
        logger.info(
            "%s overrides %d base key(s) (e.g. %s)", layout.adapter.name, len(overridden), sorted(overridden)[:3]
        )
    sources = f"{layout.wan_dir} shards + {layout.adapter}"
    return C._load_safetensors(
        model, dict(plan), dtype=dtype, device=device, key_map=None, strict=True, sources=sources
    )
