"""umT5 text encoder: parity with the official T5Encoder, the real-size key mapping, cleaning and the text path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import PreTrainedTokenizerFast, UMT5EncoderModel

from multitalk.model import t5
from multitalk.model.text_clean import clean_prompt

TOL = 1e-5


@pytest.fixture(scope="module")
def fixture(parity_path: Path):
    meta = json.loads((parity_path / "t5_encoder.json").read_text())
    weights = load_file(parity_path / meta["weights_file"])
    io = load_file(parity_path / meta["io_file"])
    return meta, weights, io


@pytest.fixture(scope="module")
def tiny(fixture):
    meta, weights, _ = fixture
    config = t5.T5EncoderConfig.from_official_args(meta["constructor_args_tiny"])
    return config, t5.build_umt5_encoder(config, weights)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


@pytest.mark.parametrize(("args_key", "hf_key"), [
    ("constructor_args_tiny", "transformers_UMT5Config_tiny"),
    ("constructor_args_real_umt5_xxl", "transformers_UMT5Config_real_umt5_xxl"),
])  # fmt: skip
def test_config_matches_the_verified_umt5_config(fixture, args_key, hf_key):
    meta = fixture[0]
    hf = t5.umt5_config(t5.T5EncoderConfig.from_official_args(meta[args_key]))
    for name, value in meta[hf_key].items():
        assert getattr(hf, name) == value, name
    assert hf.dense_act_fn == "gelu_new" and hf.is_gated_act


def test_registry_holds_the_real_umt5_xxl(fixture):
    assert t5.CONFIGS["umt5-xxl"] == t5.T5EncoderConfig.from_official_args(fixture[0]["constructor_args_real_umt5_xxl"])


def test_last_hidden_state_all_positions(fixture, tiny):
    _, _, io = fixture
    _, model = tiny
    with torch.no_grad():
        out = model(input_ids=io["input_ids"], attention_mask=io["attention_mask"], output_hidden_states=True)
    diff = _max_diff(out.last_hidden_state, io["last_hidden_state"])
    assert diff <= TOL, f"last_hidden_state max abs diff {diff:.3g}"
    # transformers' hidden_states[k + 1] is block k's output; the last entry already includes the final norm
    blocks = io["block_outputs"]
    for k in range(blocks.shape[0] - 1):
        assert _max_diff(out.hidden_states[k + 1], blocks[k]) <= TOL, f"block {k}"


def test_long_sequence_uses_the_capped_bucket(fixture, tiny):
    _, _, io = fixture
    _, model = tiny
    with torch.no_grad():
        out = model(input_ids=io["long_input_ids"], attention_mask=io["long_attention_mask"]).last_hidden_state
    diff = _max_diff(out, io["long_last_hidden_state"])
    assert diff <= TOL, f"long sequence max abs diff {diff:.3g}"


def test_encode_ids_trims_each_row_to_its_true_length(fixture, tiny):
    _, _, io = fixture
    _, model = tiny
    rows = t5.encode_ids(model, io["input_ids"], io["attention_mask"])
    assert [r.shape[0] for r in rows] == io["seq_lens"].tolist()
    for row, golden, n in zip(rows, io["last_hidden_state"], io["seq_lens"].tolist(), strict=True):
        assert _max_diff(row, golden[:n]) <= TOL


def test_bf16_run_follows_the_official_bf16_run(fixture):
    meta, weights, io = fixture
    config = t5.T5EncoderConfig.from_official_args(meta["constructor_args_tiny"])
    model = t5.build_umt5_encoder(config, weights, dtype=torch.bfloat16)
    assert model.shared.weight.dtype == torch.bfloat16
    with torch.no_grad():
        out = model(input_ids=io["input_ids"], attention_mask=io["attention_mask"]).last_hidden_state
    golden = io["last_hidden_state_bf16"]
    assert _max_diff(out, golden) <= 1e-2 * max(1.0, golden.abs().max().item())  # loose: bf16 reference


def test_pth_file_loads_memory_mapped(fixture, tmp_path):
    meta, weights, io = fixture
    path = tmp_path / "models_t5_tiny.pth"
    torch.save(weights, path)
    config = t5.T5EncoderConfig.from_official_args(meta["constructor_args_tiny"])
    model = t5.build_umt5_encoder(config, path)
    assert model.shared.weight is model.encoder.embed_tokens.weight
    rows = t5.encode_ids(model, io["input_ids"], io["attention_mask"])
    assert _max_diff(rows[0], io["last_hidden_state"][0, : rows[0].shape[0]]) <= TOL


def test_real_umt5_xxl_key_mapping_matches_transformers(parity_path: Path):
    real = json.loads((parity_path / "t5_umt5_xxl_state_dict_shapes.json").read_text())
    official = {key: torch.empty(shape, device="meta") for key, shape in real["state_dict"].items()}
    assert len(official) == real["num_keys"]
    mapped = t5.map_t5_state_dict(official)
    config = t5.T5EncoderConfig.from_official_args(real["constructor_args"])
    with torch.device("meta"):
        model = UMT5EncoderModel(t5.umt5_config(config))
    expected = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    assert set(mapped) == set(expected)
    assert len(mapped) == len(official) + 1  # the tied embedding appears under two names
    assert {key: tuple(t.shape) for key, t in mapped.items()} == expected


def test_unknown_checkpoint_key_is_named(fixture):
    _, weights, _ = fixture
    with pytest.raises(KeyError, match=r"decoder\.blocks\.0\.x"):
        t5.map_t5_state_dict({**weights, "decoder.blocks.0.x": torch.zeros(1)})


def test_weights_for_another_config_are_rejected(fixture):
    meta, weights, _ = fixture
    args = dict(meta["constructor_args_tiny"], num_layers=meta["constructor_args_tiny"]["num_layers"] + 1)
    with pytest.raises(ValueError, match="missing keys"):
        t5.build_umt5_encoder(t5.T5EncoderConfig.from_official_args(args), weights)


def test_shared_position_t5_flavour_is_rejected(fixture):
    args = dict(fixture[0]["constructor_args_tiny"], shared_pos=True)
    with pytest.raises(ValueError, match="shared_pos"):
        t5.T5EncoderConfig.from_official_args(args)


def test_prompt_cleaning_matches_every_official_example(parity_path: Path):
    examples = json.loads((parity_path / "t5_text_clean_examples.json").read_text())["examples"]
    assert examples
    for example in examples:
        assert clean_prompt(example["raw"]) == example["cleaned"], example["raw"]


def test_default_negative_prompt_is_the_english_list():
    assert t5.DEFAULT_NEGATIVE_PROMPT.startswith("bright tones, overexposed, static, blurred details")
    assert t5.DEFAULT_NEGATIVE_PROMPT.endswith("many people in the background, walking backwards")
    assert clean_prompt(t5.DEFAULT_NEGATIVE_PROMPT) == t5.DEFAULT_NEGATIVE_PROMPT


# --- the text path around the encoder, with a tiny word-level tokenizer built here -------------------------


@pytest.fixture(scope="module")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    words = ["<pad>", "</s>", "<unk>", "a", "man", "sings", "&", "dances", "in", "the", "rain"]
    vocab = {w: i for i, w in enumerate(words)}  # pad 0 and end 1, as in umt5
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    folder = tmp_path_factory.mktemp("umt5_tokenizer")
    fast.save_pretrained(folder)
    return folder


def test_tokenize_cleans_pads_and_keeps_the_end_token(tiny_tokenizer_dir):
    tokenizer = t5.load_tokenizer(tiny_tokenizer_dir)
    ids, mask = t5.tokenize(tokenizer, ["  A  man\n sings &amp;amp; dances ", "rain " * 20], text_len=8)
    assert ids.shape == mask.shape == (2, 8)
    # "A" is unknown to the lower-case vocabulary (2); cleaning turned "&amp;amp;" into "&" (6)
    assert ids[0].tolist() == [2, 4, 5, 6, 7, 1, 0, 0]
    assert mask[0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    assert ids[1].tolist() == [10] * 7 + [1]  # truncated to text_len with the end token kept
    assert mask[1].tolist() == [1] * 8


def test_text_encoder_runs_prompts_to_trimmed_contexts(tiny_tokenizer_dir, tiny):
    config, model = tiny
    encoder = t5.T5TextEncoder(model, t5.load_tokenizer(tiny_tokenizer_dir), text_len=16)
    rows = encoder(["a man sings in the rain", "dances"])
    assert [tuple(r.shape) for r in rows] == [(7, config.dim), (2, config.dim)]
    # batching and padding do not change a prompt's context
    alone = encoder(["dances"])[0]
    assert _max_diff(alone, rows[1]) <= TOL
    with pytest.raises(TypeError, match="list of prompts"):
        encoder("a man")


def test_trim_to_lengths_uses_the_mask():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    rows = t5.trim_to_lengths(hidden, mask)
    assert [r.shape[0] for r in rows] == [3, 1]
    assert torch.equal(rows[0], hidden[0, :3]) and torch.equal(rows[1], hidden[1, :1])


def test_missing_tokenizer_folder_is_named(tmp_path):
    missing = tmp_path / "google" / "umt5-xxl"
    with pytest.raises(FileNotFoundError, match="umt5-xxl"):
        t5.load_tokenizer(missing)
