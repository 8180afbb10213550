"""MedVLModel: shapes in 2D and 3D, save -> load -> identical output, offline loading."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from medvl.errors import ConfigError, ModelError
from medvl.model import MedVLConfig
from medvl.model.loading import build_model, load_model, save_model
from medvl.text import train_tokenizer

TINY_TEXT = {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 128}


@pytest.fixture(scope="module")
def tokenizer():
    reports = ["[findings] the heart is normal . no pleural effusion . [impression] normal chest ."] * 3
    return train_tokenizer(reports, min_frequency=1)


def tiny_config(spatial_dims: int = 2, **encoder) -> MedVLConfig:
    size = 64 if spatial_dims == 2 else 32
    return MedVLConfig(
        encoder={"name": "resnet10", "spatial_dims": spatial_dims, "widen_factor": 0.25, **encoder},
        text_config=TINY_TEXT,
        preprocessing={"spatial_dims": spatial_dims, "image_size": size, "max_views": 2 if spatial_dims == 2 else 1},
        text={"max_length": 40},
    )


@pytest.mark.parametrize(
    ("spatial_dims", "encoder", "grid"),
    [
        (2, {"feature_stage": 3}, (4, 4)),  # 64 px, stride 16
        (2, {"feature_stage": 2, "token_grid": [2, 2]}, (2, 2)),
        (3, {"feature_stage": 3}, (2, 2, 2)),  # 32 voxels, stride 16
        (2, {"name": "densenet121", "feature_stage": 3}, (4, 4)),  # stride 16 after denseblock3
        (2, {"feature_stage": 3, "detail_stage": 2, "token_grid": [2, 2]}, (2, 2)),
        (3, {"feature_stage": 3, "detail_stage": 1}, (2, 2, 2)),
        (2, {"name": "densenet121", "feature_stage": 3, "detail_stage": 2}, (4, 4)),
    ],
)
def test_visual_prefix_has_one_token_per_grid_cell_and_view(tokenizer, spatial_dims, encoder, grid):
    model = build_model(tiny_config(spatial_dims, **encoder), tokenizer)
    views = model.config.max_views
    images = torch.randn(2, views, 1, *model.config.transform_config.image_size)
    ids = torch.tensor([[tokenizer.bos_token_id, 10, 11, tokenizer.eos_token_id]] * 2)

    output = model(images, torch.ones(2, views, dtype=torch.bool), ids, labels=ids)

    assert model.grid_shape == grid
    assert output.n_visual_tokens == views * torch.tensor(grid).prod().item()
    assert output.logits.shape == (2, 4, len(tokenizer))
    assert torch.isfinite(output.loss)


def test_detail_stage_keeps_a_one_pixel_spot_that_the_deep_features_average_away(tokenizer):
    """The detail channels are the earlier stage's maximum over each token's cell: a one-pixel
    spot raises exactly the detail channels of the cell it lies in."""
    encoder = build_model(tiny_config(feature_stage=3, detail_stage=1, token_grid=[2, 2]), tokenizer).encoder.eval()
    deep_channels = encoder.out_channels - 16  # resnet10 at width 0.25: 16 channels after layer1
    image = torch.zeros(1, 1, 64, 64)
    spotted = image.clone()
    spotted[0, 0, 10, 50] = 50.0  # upper right cell of the 2 x 2 grid
    with torch.no_grad():
        change = (encoder(spotted) - encoder(image))[0, deep_channels:].abs().amax(dim=0)
        detail_only = encoder.stages[: encoder.detail_end](spotted) - encoder.stages[: encoder.detail_end](image)

    assert encoder.out_channels == build_model(tiny_config(), tokenizer).encoder.out_channels + 16
    assert change[0, 1] > 0 and change[0, 0] == change[1, 0] == change[1, 1] == 0
    assert torch.isclose(change[0, 1], detail_only.abs().amax())


def test_text_loss_scores_only_the_report_as_the_language_model_itself_would(tokenizer):
    """The LM head runs over the report's positions only; the loss equals the language model's
    own loss over the whole sequence with the visual prefix ignored."""
    torch.manual_seed(0)
    model = build_model(tiny_config(), tokenizer).eval()
    images, view_mask = torch.randn(2, 2, 1, 64, 64), torch.ones(2, 2, dtype=torch.bool)
    ids = torch.tensor([[tokenizer.bos_token_id, 10, 11, tokenizer.eos_token_id]] * 2)
    labels = ids.clone()
    labels[:, 0] = -100
    with torch.no_grad():
        output = model(images, view_mask, ids, labels=labels)
        visual = model.visual_tokens(images, view_mask)
        prefix_labels = torch.full(visual.shape[:2], -100)
        reference = model.language_model(
            inputs_embeds=torch.cat([visual, model.get_input_embeddings()(ids)], dim=1),
            labels=torch.cat([prefix_labels, labels], dim=1),
        )

    assert model._text_logits_only
    assert output.logits.shape == (2, 4, len(tokenizer))
    assert torch.allclose(output.logits, reference.logits[:, -4:], atol=1e-5)
    assert torch.isclose(output.text_loss, reference.loss, atol=1e-6)


def test_missing_view_uses_its_learned_embedding_whatever_the_pixels(tokenizer):
    model = build_model(tiny_config(), tokenizer).eval()
    frontal = torch.randn(1, 1, 1, 64, 64)
    present = torch.tensor([[True, False]])
    with torch.no_grad():
        one = model.visual_tokens(torch.cat([frontal, torch.zeros_like(frontal)], 1), present)
        two = model.visual_tokens(torch.cat([frontal, torch.randn_like(frontal)], 1), present)
    assert torch.equal(one, two)


def test_save_load_generate_gives_identical_output(tokenizer, tmp_path):
    model = build_model(tiny_config(), tokenizer).eval()
    images, view_mask = torch.randn(3, 2, 1, 64, 64), torch.ones(3, 2, dtype=torch.bool)
    before = model.generate(images, view_mask)

    save_model(model, tokenizer, tmp_path / "model")
    loaded, loaded_tokenizer = load_model(tmp_path / "model")

    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"
    ]
    assert torch.equal(loaded.generate(images, view_mask), before)
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert loaded.config.transform_config == model.config.transform_config


def test_model_folder_loads_with_transformers_automodel_offline_in_a_fresh_process(tokenizer, tmp_path):
    save_model(build_model(tiny_config(), tokenizer), tokenizer, tmp_path / "model")
    code = (
        "import medvl.model, transformers, os;"
        "assert os.environ['HF_HUB_OFFLINE'] == '1';"
        f"m = transformers.AutoModel.from_pretrained(r'{tmp_path / 'model'}', local_files_only=True);"
        "print(type(m).__name__, m.grid_shape)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["MedVLModel", "(4,", "4)"]


def test_bad_configs_are_refused_with_the_key_named(tokenizer):
    with pytest.raises(ConfigError, match="encoder.name: unknown network 'resnet11'"):
        tiny_config(name="resnet11")
    with pytest.raises(ConfigError, match=r"encoder.detail_stage: expected a stage before feature_stage \(3\), got 3"):
        tiny_config(feature_stage=3, detail_stage=3)
    with pytest.raises(ConfigError, match="has 128 positions but needs 136: 64 visual tokens"):
        build_model(
            MedVLConfig(encoder={"name": "resnet10", "feature_stage": 2}, text_config=TINY_TEXT,
                        preprocessing={"image_size": 64, "max_views": 1}, text={"max_length": 70}),
            tokenizer,
        )


def test_missing_model_folder_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not a medvl model folder: missing config.json"):
        (tmp_path / "empty").mkdir()
        load_model(tmp_path / "empty")


def test_finding_pos_weight_scales_exactly_the_missed_positives(tokenizer):
    """One image, one label present and one absent: the absent label's loss is unchanged, the
    present label's is multiplied by the weight (study level; here no token labels)."""
    def finding_loss(pos_weight: float) -> torch.Tensor:
        torch.manual_seed(0)
        config = tiny_config()
        config.finding_labels, config.finding_pos_weight = ["nodule:left", "mass:left"], pos_weight
        model = build_model(config, tokenizer).eval()
        images, view_mask = torch.randn(1, 2, 1, 64, 64), torch.ones(1, 2, dtype=torch.bool)
        ids = torch.tensor([[tokenizer.bos_token_id, 10, tokenizer.eos_token_id]])
        with torch.no_grad():
            out = model(images, view_mask, ids, labels=ids, finding_targets=torch.tensor([[1.0, 0.0]]))
        return out.finding_loss, out.finding_logits[0]

    plain, logits = finding_loss(1.0)
    weighted, _ = finding_loss(5.0)
    positive = torch.nn.functional.softplus(-logits[0])  # BCE of the present label
    assert torch.allclose(weighted - plain, 4.0 * positive, atol=1e-5)
    with pytest.raises(ConfigError, match="finding_pos_weight"):
        MedVLConfig(finding_pos_weight=0)


def test_finding_token_weight_scales_exactly_the_token_term(tokenizer):
    """The same model and batch: the study term (the maximum over the tokens) is unchanged, the
    per-token term (here one token taught a present label, all others taught it absent) is
    multiplied by ``finding_token_weight``."""
    def finding_loss(token_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        config = tiny_config()
        config.finding_labels, config.finding_token_weight = ["nodule:left", "mass:left"], token_weight
        model = build_model(config, tokenizer).eval()
        images, view_mask = torch.randn(1, 2, 1, 64, 64), torch.ones(1, 2, dtype=torch.bool)
        ids = torch.tensor([[tokenizer.bos_token_id, 10, tokenizer.eos_token_id]])
        tokens = model.n_visual_tokens
        token_targets = torch.zeros(1, tokens, 2)
        token_targets[0, 3, 0] = 1.0
        with torch.no_grad():
            out = model(images, view_mask, ids, labels=ids, finding_targets=torch.tensor([[1.0, 0.0]]),
                        token_targets=token_targets, token_known=torch.ones(1, tokens, 2, dtype=torch.bool))
            _, token_logits = model.encode(images, view_mask)
        token_term = torch.nn.functional.binary_cross_entropy_with_logits(
            token_logits, token_targets, reduction="sum") / tokens
        return out.finding_loss, token_term

    plain, token_term = finding_loss(1.0)
    weighted, _ = finding_loss(4.0)
    assert token_term > 0
    assert torch.allclose(weighted - plain, 3.0 * token_term, atol=1e-5)
    assert torch.allclose(finding_loss(0.0)[0], plain - token_term, atol=1e-5)  # the study term alone
    with pytest.raises(ConfigError, match="finding_token_weight"):
        MedVLConfig(finding_token_weight=-1)


def _effusion_batch(generator: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` two-view noise studies; the odd ones have a bright block low on the frontal view's left."""
    images = torch.randn(n, 2, 1, 64, 64, generator=generator) * 0.3
    shown = (torch.arange(n) % 2).float()[:, None]
    images[1::2, 0, 0, 40:60, 36:60] += 3.0
    return images, shown


def test_finding_prompt_makes_the_draft_say_what_the_head_sees(tokenizer):
    """Trained 60 steps on two reports (effusion or not), a tiny model with the finding
    prompt (taught with the true labels, drafting from its head's verdicts) writes the effusion
    report exactly for the fresh studies that show one; its prefix holds one prompt token per
    label after the visual tokens."""
    torch.manual_seed(0)
    config = tiny_config()
    config.finding_labels, config.finding_prompt = ["pleural_effusion:left"], True
    model = build_model(config, tokenizer)
    reports = {0.0: "[findings] the heart is normal . no pleural effusion .", 1.0: "[findings] pleural effusion ."}
    encoded = {shown: tokenizer(text)["input_ids"] for shown, text in reports.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(60):
        images, shown = _effusion_batch(generator, 8)
        ids = _padded([[tokenizer.bos_token_id, *encoded[float(s)], tokenizer.eos_token_id] for s in shown[:, 0]],
                      tokenizer.pad_token_id)
        labels = ids.masked_fill(ids == tokenizer.pad_token_id, -100)
        loss = model(images, torch.ones(8, 2, dtype=torch.bool), ids, attention_mask=(ids != tokenizer.pad_token_id).long(),
                     labels=labels, finding_targets=shown).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.eval()
    images, shown = _effusion_batch(torch.Generator().manual_seed(2), 6)
    view_mask = torch.ones(6, 2, dtype=torch.bool)
    drafts = tokenizer.batch_decode(model.generate(images, view_mask), skip_special_tokens=True)
    assert [draft.strip() == reports[1.0] for draft in drafts] == [bool(s) for s in shown[:, 0]]
    assert all(draft.startswith("[findings] the heart is normal") for draft, s in zip(drafts, shown[:, 0]) if not s)

    with torch.no_grad():
        output = model(images, view_mask, _padded([[tokenizer.bos_token_id]] * 6, tokenizer.pad_token_id))
    assert output.n_prefix_tokens == output.n_visual_tokens + 1


def _padded(rows: list[list[int]], pad: int) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [pad] * (width - len(row)) for row in rows])
