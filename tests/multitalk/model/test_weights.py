"""Official weight layout, sharded loading into meta-built models, dtype policy and fingerprints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from multitalk.model.checkpoint import (
    MissingWeightsError,
    WeightsError,
    build_on_meta,
    load_pth_checkpoint,
    load_safetensors_checkpoint,
    prefix_map,
)
from multitalk.model.dtype_policy import DTYPE_POLICIES, parse_dtype
from multitalk.model.fingerprint import fingerprint_files
from multitalk.model.release import (
    CLIP_FILE,
    CLIP_TOKENIZER,
    DIT_CONFIG,
    DIT_INDEX,
    MULTITALK_DIR,
    MULTITALK_FILE,
    T5_FILE,
    T5_TOKENIZER,
    VAE_FILE,
    WAN_DIR,
    WAV2VEC_DIR,
    WAV2VEC_FILES,
    check_weights,
    load_dit_weights,
    missing_files,
    resolve_weights,
    weights_fingerprint,
)

# --------------------------------------------------------------------------------------------------------
# A tiny model with official-looking key names, and a release written from it


class _Attn(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))


class _AudioAttn(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(8, 2 * dim)
        self.proj = nn.Linear(dim, dim)


class _Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.modulation = nn.Parameter(torch.randn(1, 6, dim))
        self.self_attn = _Attn(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.audio_cross_attn = _AudioAttn(dim)


class _Head(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.head = nn.Linear(dim, 4)
        self.modulation = nn.Parameter(torch.randn(1, 2, dim))


class _AudioProj(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj1 = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)


class TinyDiT(nn.Module):
    def __init__(self, dim: int = 16, layers: int = 3) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv3d(4, dim, (1, 2, 2), stride=(1, 2, 2))
        self.blocks = nn.ModuleList(_Block(dim) for _ in range(layers))
        self.head = _Head(dim)
        self.audio_proj = _AudioProj()


def _tiny_vae() -> nn.Module:
    return nn.Sequential(nn.Conv3d(3, 4, 3), nn.Conv3d(4, 3, 1))


class _TinyClip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 2, stride=2, bias=False)
        self.ln = nn.LayerNorm(8)


def _tiny_t5() -> nn.Module:
    return nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 8))


def _is_adapter(key: str) -> bool:
    return key.startswith("audio_proj.") or ".audio_cross_attn." in key


def _shard_name(i: int, n: int) -> str:
    return f"diffusion_pytorch_model-{i:05d}-of-{n:05d}.safetensors"


def _write_dit(state: dict[str, torch.Tensor], wan: Path, adapter_dir: Path, mt_index_dir: Path) -> None:
    """Two base shards + base index in `wan`, the adapter + MultiTalk index where the layout puts them."""
    base = sorted(k for k in state if not _is_adapter(k))
    adapter = sorted(k for k in state if _is_adapter(k))
    halves = [base[: len(base) // 2], base[len(base) // 2 :]]
    weight_map: dict[str, str] = {}
    for i, keys in enumerate(halves, start=1):
        name = _shard_name(i, len(halves))
        save_file({k: state[k].contiguous() for k in keys}, str(wan / name))
        weight_map.update(dict.fromkeys(keys, name))
    (wan / DIT_INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    save_file({k: state[k].contiguous() for k in adapter}, str(adapter_dir / MULTITALK_FILE))
    mt_map = {**weight_map, **dict.fromkeys(adapter, MULTITALK_FILE)}
    (mt_index_dir / DIT_INDEX).write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": mt_map}))


@pytest.fixture
def reference() -> dict[str, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    t5 = {k: v.to(torch.bfloat16) for k, v in _tiny_t5().state_dict().items()}  # the release file is bf16
    clip = {f"visual.{k}": v for k, v in _TinyClip().state_dict().items()}
    clip["textual.token_embedding.weight"] = torch.randn(5, 4)  # the text tower our encoder does not use
    return {
        "dit": TinyDiT().state_dict(),
        "vae": _tiny_vae().state_dict(),
        "t5": t5,
        "clip": clip,
    }


def write_release(root: Path, reference: dict, kind: str) -> Path:
    """A tiny release under `root` in the "linked" or "side_by_side" layout."""
    wan = root / WAN_DIR
    mt = root / MULTITALK_DIR
    w2v = root / WAV2VEC_DIR
    for d in (wan, mt, w2v, wan / T5_TOKENIZER, wan / CLIP_TOKENIZER):
        d.mkdir(parents=True, exist_ok=True)
    (wan / DIT_CONFIG).write_text(json.dumps({"dim": 16, "num_layers": 3}))
    if kind == "linked":
        _write_dit(reference["dit"], wan, adapter_dir=wan, mt_index_dir=wan)
        shutil.rmtree(mt)
    else:
        _write_dit(reference["dit"], wan, adapter_dir=mt, mt_index_dir=mt)
    torch.save(reference["vae"], wan / VAE_FILE)
    torch.save(reference["t5"], wan / T5_FILE)
    torch.save(reference["clip"], wan / CLIP_FILE)
    (wan / T5_TOKENIZER / "tokenizer.json").write_text("{}")
    (wan / CLIP_TOKENIZER / "tokenizer.json").write_text("{}")
    for name in WAV2VEC_FILES:
        (w2v / name).write_text("{}")
    (w2v / "pytorch_model.bin").write_bytes(b"\0" * 16)
    return root


def _assert_loaded(model: nn.Module, state: dict[str, torch.Tensor], dtype: torch.dtype) -> None:
    loaded = model.state_dict()
    assert sorted(loaded) == sorted(state)
    for key, expected in state.items():
        assert loaded[key].dtype == dtype, key
        assert not loaded[key].is_meta, key
        assert torch.equal(loaded[key], expected.to(dtype)), key


# --------------------------------------------------------------------------------------------------------
# Loading


@pytest.mark.parametrize("kind", ["linked", "side_by_side"])
@pytest.mark.parametrize("policy_name", ["official", "fp32"])
def test_release_loads_in_both_layouts_with_dtype_policy(tmp_path, reference, kind, policy_name):
    root = write_release(tmp_path, reference, kind)
    layout = resolve_weights(root)
    assert layout.kind == kind
    assert sorted(layout.dit_shards) == sorted([_shard_name(1, 2), _shard_name(2, 2), MULTITALK_FILE])
    adapter_home = root / (WAN_DIR if kind == "linked" else MULTITALK_DIR)
    assert layout.dit_shards[MULTITALK_FILE] == adapter_home / MULTITALK_FILE
    assert layout.dit_shards[_shard_name(1, 2)].parent == root / WAN_DIR
    policy = DTYPE_POLICIES[policy_name]

    dit = load_dit_weights(build_on_meta(TinyDiT), layout, dtype=policy.dit)
    _assert_loaded(dit, reference["dit"], policy.dit)
    assert all(p.requires_grad for p in dit.parameters())

    vae = load_pth_checkpoint(build_on_meta(_tiny_vae), layout.vae, dtype=policy.vae)
    _assert_loaded(vae, reference["vae"], policy.vae)
    t5 = load_pth_checkpoint(build_on_meta(_tiny_t5), layout.t5, dtype=policy.t5)
    _assert_loaded(t5, reference["t5"], policy.t5)
    clip = load_pth_checkpoint(build_on_meta(_TinyClip), layout.clip, dtype=policy.clip, key_map=prefix_map("visual."))
    visual = {k.removeprefix("visual."): v for k, v in reference["clip"].items() if k.startswith("visual.")}
    _assert_loaded(clip, visual, policy.clip)

    # The loaded model computes (so nothing is left half-materialised).
    x = torch.randn(1, 4, 1, 4, 4, dtype=policy.dit)
    assert dit.patch_embedding(x).shape == (1, 16, 1, 2, 2)


def test_single_safetensors_file_with_key_map(tmp_path):
    tensors = {"visual.conv1.weight": torch.randn(8, 3, 2, 2), "visual.ln.weight": torch.randn(8)}
    tensors |= {"visual.ln.bias": torch.randn(8), "textual.proj": torch.randn(3)}
    path = tmp_path / "clip.safetensors"
    save_file(tensors, str(path))
    model = load_safetensors_checkpoint(
        build_on_meta(_TinyClip), path, dtype=torch.float16, key_map=prefix_map("visual.")
    )
    assert model.ln.bias.dtype == torch.float16
    assert torch.equal(model.conv1.weight, tensors["visual.conv1.weight"].half())
    with pytest.raises(WeightsError, match=r"unexpected tensor 'textual\.proj'"):
        load_safetensors_checkpoint(build_on_meta(_TinyClip), path, key_map=lambda k: k.split(".", 1)[1])


def test_official_dtype_policy_table():
    p = DTYPE_POLICIES["official"]
    assert (p.dit, p.vae, p.clip, p.t5) == (torch.bfloat16, torch.float32, torch.float16, torch.bfloat16)
    assert p.with_overrides(dit="fp32", clip=torch.float32).dtype_for("dit") == torch.float32
    assert p.with_overrides(clip="float32").clip == torch.float32
    with pytest.raises(ValueError, match="unknown weights component"):
        p.with_overrides(unet="fp32")
    with pytest.raises(ValueError, match="'fp8'"):
        parse_dtype("fp8")


def test_dtype_none_keeps_the_meta_models_dtypes(tmp_path, reference):
    layout = resolve_weights(write_release(tmp_path, reference, "side_by_side"))

    def factory() -> nn.Module:
        model = TinyDiT()
        model.head.to(torch.float64)  # a mixed-precision model: the loader must respect it
        return model

    model = load_dit_weights(build_on_meta(factory), layout, dtype=None)
    assert model.head.head.weight.dtype == torch.float64
    assert model.blocks[0].self_attn.q.weight.dtype == torch.float32
    assert torch.equal(model.head.head.weight, reference["dit"]["head.head.weight"].double())


def test_root_may_be_the_wan_folder_itself(tmp_path, reference):
    root = write_release(tmp_path, reference, "linked")
    layout = resolve_weights(root / WAN_DIR)
    assert layout.kind == "linked"
    assert layout.wav2vec_dir == root / WAV2VEC_DIR


# --------------------------------------------------------------------------------------------------------
# Errors


def test_missing_shard_names_the_shard_and_the_index(tmp_path, reference):
    root = write_release(tmp_path, reference, "side_by_side")
    (root / WAN_DIR / _shard_name(2, 2)).unlink()
    index = root / MULTITALK_DIR / DIT_INDEX
    with pytest.raises(MissingWeightsError) as err:
        load_safetensors_checkpoint(build_on_meta(TinyDiT), index, search_dirs=[root / MULTITALK_DIR, root / WAN_DIR])
    message = str(err.value)
    assert _shard_name(2, 2) in message
    assert str(index) in message
    assert _shard_name(1, 2) not in message


def test_missing_files_one_error_lists_every_file_and_both_layouts(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        resolve_weights(tmp_path)
    message = str(err.value)
    for name in (
        DIT_INDEX,
        DIT_CONFIG,
        MULTITALK_FILE,
        VAE_FILE,
        T5_FILE,
        CLIP_FILE,
        T5_TOKENIZER,
        CLIP_TOKENIZER,
        *WAV2VEC_FILES,
        "pytorch_model.bin",
    ):
        assert name in message, name
    assert "linked" in message and "side by side" in message
    assert 'README.md, section "Official weights"' in message
    statuses = check_weights(tmp_path)  # the doctor view: no exception, every file reported
    assert statuses and not any(s.present for s in statuses)


def test_missing_files_lists_exactly_what_is_missing(tmp_path, reference):
    root = write_release(tmp_path, reference, "side_by_side")
    assert missing_files(root) == []
    assert all(s.present for s in check_weights(root))
    (root / WAN_DIR / VAE_FILE).unlink()
    (root / WAN_DIR / _shard_name(1, 2)).unlink()
    (root / WAV2VEC_DIR / "pytorch_model.bin").unlink()
    missing = missing_files(root)
    assert {m.path.name for m in missing} == {VAE_FILE, _shard_name(1, 2), "pytorch_model.bin"}
    with pytest.raises(MissingWeightsError) as err:
        resolve_weights(root)
    message = str(err.value)
    assert "3 missing" in message
    assert f"{WAN_DIR}/{VAE_FILE}" in message
    assert _shard_name(1, 2) in message and _shard_name(2, 2) not in message
    assert T5_FILE not in message


def test_base_wan_index_without_multitalk_is_reported(tmp_path, reference):
    root = write_release(tmp_path, reference, "side_by_side")
    shutil.rmtree(root / MULTITALK_DIR)  # only the Wan release was downloaded
    missing = missing_files(root)
    names = {m.path.name for m in missing}
    assert names == {DIT_INDEX, MULTITALK_FILE}
    index_entry = next(m for m in missing if m.path.name == DIT_INDEX)
    assert "base Wan index" in index_entry.note


def test_key_errors_name_key_and_shard(tmp_path, reference):
    root = write_release(tmp_path, reference, "linked")
    layout = resolve_weights(root)

    class Extra(TinyDiT):
        def __init__(self) -> None:
            super().__init__()
            self.norm_extra = nn.LayerNorm(16)

    with pytest.raises(WeightsError, match=r"missing from .*norm_extra\.weight"):
        load_dit_weights(build_on_meta(Extra), layout)

    class Fewer(TinyDiT):
        def __init__(self) -> None:
            super().__init__()
            del self.audio_proj

    with pytest.raises(WeightsError, match=r"multitalk\.safetensors: unexpected tensor 'audio_proj\."):
        load_dit_weights(build_on_meta(Fewer), layout)

    with pytest.raises(WeightsError, match=r"00001-of-00002\.safetensors: tensor '[^']+' has shape .* model expects"):
        load_dit_weights(build_on_meta(lambda: TinyDiT(dim=8)), layout)


def test_non_persistent_meta_buffer_is_reported(tmp_path, reference):
    layout = resolve_weights(write_release(tmp_path, reference, "linked"))

    class WithCache(TinyDiT):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("rope_cache", torch.zeros(4), persistent=False)

    with pytest.raises(WeightsError, match="rope_cache"):
        load_dit_weights(build_on_meta(WithCache), layout)


def test_truncated_shard_is_reported(tmp_path, reference):
    layout = resolve_weights(write_release(tmp_path, reference, "linked"))
    shard = layout.dit_shards[_shard_name(1, 2)]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(WeightsError, match=_shard_name(1, 2)):
        load_dit_weights(build_on_meta(TinyDiT), layout)


# --------------------------------------------------------------------------------------------------------
# Fingerprint


def test_fingerprint_stable_for_identical_files_and_sensitive_to_one_tensor(tmp_path, reference):
    root = write_release(tmp_path / "a", reference, "side_by_side")
    before = weights_fingerprint(root, "dit")
    whole = weights_fingerprint(root)
    write_release(tmp_path / "a", reference, "side_by_side")  # re-written identically (new mtimes)
    assert weights_fingerprint(root, "dit") == before
    assert weights_fingerprint(root) == whole
    # Same files in the other layout and another folder: same fingerprint (names are logical, not paths).
    other = write_release(tmp_path / "b", reference, "linked")
    assert weights_fingerprint(other, "dit") == before

    changed = {k: v.clone() for k, v in reference["dit"].items()}
    changed["blocks.1.ffn.0.bias"][3] += 1.0
    write_release(tmp_path / "a", {**reference, "dit": changed}, "side_by_side")
    assert weights_fingerprint(root, "dit") != before
    assert weights_fingerprint(root, "vae") == weights_fingerprint(other, "vae")


def test_sampled_fingerprint_of_large_files(tmp_path):
    big = {f"t{i}": torch.randn(64, 1024) for i in range(8)}  # 2 MiB of data, above the limit below
    path = tmp_path / "x.safetensors"
    save_file(big, str(path))
    kwargs = {"full_hash_limit": 1024, "sample_blocks": 8, "sample_block_bytes": 4096}
    first = fingerprint_files([path], **kwargs)
    save_file(big, str(path))
    assert fingerprint_files([path], **kwargs) == first
    big["t7"] = big["t7"] + 1.0  # the whole last tensor changes
    save_file(big, str(path))
    assert fingerprint_files([path], **kwargs) != first
    big["t0"] = torch.randn(32, 2048)  # same bytes count, new shape: the header differs
    save_file(big, str(path))
    assert fingerprint_files([path], **kwargs) != first


# --------------------------------------------------------------------------------------------------------
# The real DiT class with the parity weights, through a sharded release


def test_parity_dit_loads_through_a_sharded_release_and_runs(tmp_path, reference, load_parity):
    dit = pytest.importorskip("multitalk.model.dit")
    meta, state = load_parity("dit_weights")
    root = write_release(tmp_path, {**reference, "dit": state}, "side_by_side")
    layout = resolve_weights(root)
    config = dit.DiTConfig.from_official(meta["config"])
    model = load_dit_weights(build_on_meta(lambda: dit.MultiTalkDiT(config)), layout, dtype=torch.float32)
    _assert_loaded(model, state, torch.float32)
    assert len(model.state_dict()) == meta["num_keys"]

    _, io = load_parity("dit_single")
    with torch.no_grad():
        out = model(
            io["x"][None], io["t"], [io["context"]], io["clip_fea"], io["y"], [io["audio"]], io["ref_target_masks"]
        )
    assert (out - io["out"]).abs().max().item() <= 1e-5 * max(1.0, io["out"].abs().max().item())
