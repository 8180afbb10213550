"""Fine-tuning: a pretrained decoder from a local folder, frozen parts, LoRA adapters saved and reloaded."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from train_fixtures import tiny_run
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from medvl.data.manifest import read_manifest
from medvl.data.phantom import write_phantom_dataset
from medvl.errors import ConfigError, ModelError
from medvl.model import MedVLConfig
from medvl.model.adapters import LoraSettings, add_lora, freeze, has_lora, load_adapter
from medvl.model.loading import build_model_with_language_model, load_model, save_model
from medvl.text import SECTION_TAGS, clean_report
from medvl.train.batching import encode_targets
from medvl.train.config import TrainConfig
from medvl.train.loop import extend_vocabulary, train

EOS = "<|endoftext|>"


def save_language_model(folder, texts) -> int:
    """A GPT-2 style model and its own tokenizer (no BOS, no padding, no medvl tags), as a hub
    download would leave them in a local folder. Returns its vocabulary size."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=[EOS, "<unk>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, unk_token="<unk>")
    config = GPT2Config(
        vocab_size=len(fast), n_layer=1, n_embd=32, n_head=2, n_positions=192, bos_token_id=0, eos_token_id=0
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return len(fast)


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantoms")
    return write_phantom_dataset(folder, 40, seed=5, image_size=96, views=("frontal",))


@pytest.fixture(scope="module")
def language_model_dir(tmp_path_factory, phantoms):
    folder = tmp_path_factory.mktemp("gpt2-local")
    save_language_model(folder, [clean_report(row.report) for row in read_manifest(phantoms)])
    return folder


def small_config() -> MedVLConfig:
    return MedVLConfig(
        encoder={"name": "resnet10", "widen_factor": 0.25, "token_grid": [2, 2]},
        preprocessing={"image_size": 64, "max_views": 1, "augment": {"enabled": False}},
        text={"max_length": 100},
    )


def one_step(model, tokenizer) -> None:
    batch = encode_targets(["[findings] the heart is normal . [impression] no acute disease ."], tokenizer, 100)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    images = torch.randn(1, 1, 1, 64, 64)
    loss = model(images=images, view_mask=torch.ones(1, 1), **batch).loss
    loss.backward()
    optimizer.step()
    model.eval()


def test_a_local_pretrained_decoder_gets_the_section_tags_and_a_larger_embedding(language_model_dir):
    vocabulary = GPT2Config.from_pretrained(language_model_dir).vocab_size

    model, tokenizer = build_model_with_language_model(small_config(), language_model_dir)

    assert len(tokenizer) == vocabulary + len(SECTION_TAGS)
    assert model.language_model.get_input_embeddings().num_embeddings == len(tokenizer)
    assert tokenizer.pad_token == tokenizer.bos_token == EOS
    assert model.language_model.config._attn_implementation == "eager"
    ids = tokenizer("[findings] the heart", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids[0]) == "[findings]"


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(ModelError, match="not a Hugging Face model folder"):
        build_model_with_language_model(small_config(), tmp_path)


def test_lora_trains_only_the_adapters_and_the_unfrozen_parts(language_model_dir):
    model, tokenizer = build_model_with_language_model(small_config(), language_model_dir)
    freeze(model, ["encoder"])
    add_lora(model, LoraSettings(r=4, alpha=8, dropout=0.0))
    before = copy.deepcopy(model.state_dict())

    one_step(model, tokenizer)

    after = model.state_dict()
    changed = {name for name in after if not torch.equal(before[name], after[name])}
    assert changed, "nothing trained"
    assert not any(name.startswith("encoder.") for name in changed)
    assert all("lora_" in name for name in changed if name.startswith("language_model."))
    assert any("lora_B" in name for name in changed)
    assert any(name.startswith("projector.") for name in changed)


def test_freezing_the_projector_also_freezes_the_token_embeddings_added_to_its_output(language_model_dir):
    model, tokenizer = build_model_with_language_model(small_config(), language_model_dir)
    freeze(model, ["encoder", "projector"])
    add_lora(model, LoraSettings(r=4, alpha=8, dropout=0.0))
    before = copy.deepcopy(model.state_dict())

    one_step(model, tokenizer)

    changed = {name for name, value in model.state_dict().items() if not torch.equal(before[name], value)}
    assert changed and all("lora_" in name for name in changed), changed


def test_adapters_are_saved_merged_and_alone_and_both_reload_to_the_same_drafts(language_model_dir, tmp_path):
    model, tokenizer = build_model_with_language_model(small_config(), language_model_dir)
    base = copy.deepcopy(model)
    freeze(model, ["encoder", "projector"])
    add_lora(model, LoraSettings(r=4, alpha=8, dropout=0.0))
    one_step(model, tokenizer)
    images, view_mask = torch.randn(2, 1, 1, 64, 64), torch.ones(2, 1)
    expected = model.generate(images, view_mask)

    save_model(model, tokenizer, tmp_path / "tuned")
    merged, merged_tokenizer = load_model(tmp_path / "tuned")
    with_adapter = load_adapter(base, tmp_path / "tuned" / "adapter")

    assert (tmp_path / "tuned" / "adapter" / "adapter_model.safetensors").is_file()
    assert not has_lora(merged) and has_lora(with_adapter)
    assert merged_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert torch.equal(merged.generate(images, view_mask), expected)
    assert torch.equal(with_adapter.generate(images, view_mask), expected)


def test_fine_tuning_settings_are_checked(tmp_path):
    values = tiny_run(tmp_path)
    with pytest.raises(ConfigError, match="finetune.freeze: unknown part"):
        TrainConfig.from_dict({**values, "finetune": {"freeze": ["decoder"]}})
    with pytest.raises(ConfigError, match="finetune.lora: unknown key"):
        TrainConfig.from_dict({**values, "finetune": {"lora": {"rank": 4}}})
    with pytest.raises(ConfigError, match="cannot change a model loaded with finetune.init_from"):
        TrainConfig.from_dict({**values, "finetune": {"init_from": "cxr"}})


@pytest.mark.slow
def test_training_a_lora_decoder_from_a_local_folder_saves_a_model_and_its_adapter(tmp_path, language_model_dir):
    values = tiny_run(tmp_path, epochs=1, max_steps=4)
    values["model"] = {**values["model"], "language_model_dir": str(language_model_dir)}
    del values["model"]["text_config"]
    values["finetune"] = {"freeze": ["encoder"], "lora": {"r": 4, "alpha": 8}}

    best = train(TrainConfig.from_dict(values))

    model, tokenizer = load_model(best)
    assert (best / "adapter" / "adapter_config.json").is_file()
    assert model.config.text["tokenizer"] == "pretrained" and tokenizer.eos_token == EOS
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["processes"] == 1


@pytest.mark.slow
def test_fine_tuning_starts_from_a_trained_model(tmp_path):
    first = train(TrainConfig.from_dict(tiny_run(tmp_path / "first", epochs=1, max_steps=2)))
    values = tiny_run(tmp_path / "second", epochs=1, max_steps=2)
    values["data"] = tiny_run(tmp_path / "first")["data"]
    values["model"] = {"model_name": "site-tuned"}
    values["finetune"] = {"init_from": str(first), "freeze": ["encoder", "language_model"]}
    start, _ = load_model(first)

    tuned, _ = load_model(train(TrainConfig.from_dict(values)))

    assert tuned.config.model_name == "site-tuned"
    for name, tensor in start.state_dict().items():
        if name.startswith(("encoder.", "language_model.")):
            assert torch.equal(tensor, tuned.state_dict()[name]), name
    assert not torch.equal(start.projector.layers[0].weight, tuned.projector.layers[0].weight)


def test_extending_the_vocabulary_adds_frequent_new_words_and_keeps_the_old_ids(language_model_dir):
    model, tokenizer = build_model_with_language_model(small_config(), language_model_dir)
    old = dict(tokenizer.get_vocab())
    targets = ["[findings] zorbic quaxel ."] * 3 + ["[findings] a rare-word ."]

    added = extend_vocabulary(model, tokenizer, targets, min_frequency=2)

    assert added == 2  # "zorbic" and "quaxel"; "rare-word" is seen once
    assert all(tokenizer.get_vocab()[word] == index for word, index in old.items())
    assert model.language_model.get_input_embeddings().num_embeddings == len(tokenizer)
    ids = tokenizer("zorbic quaxel", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["zorbic", "quaxel"]
