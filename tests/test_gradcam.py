"""Grad-CAM and occlusion maps of a draft's sentences: on each view's own pixels, model left untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explain_fixtures import hand_written_draft, save_tiny_model

from medvl.data.phantom import make_chest_ct, make_chest_radiograph, write_nifti, write_study_images
from medvl.errors import ConfigError
from medvl.explain.gradcam import SentenceLogProbs, gradcam_maps, sentence_gradcam, sentence_spans
from medvl.explain.occlusion import occlusion_maps
from medvl.findings import Finding
from medvl.model.modeling import IGNORE_INDEX
from medvl.report.drafting import Drafter

NODULE = Finding("nodule", side="left", zone="upper", size_mm=25.0)


@pytest.fixture(scope="module")
def drafter(tmp_path_factory) -> Drafter:
    return Drafter(save_tiny_model(tmp_path_factory.mktemp("model") / "tiny"), device="cpu")


@pytest.fixture(scope="module")
def phantom_paths(tmp_path_factory) -> list:
    """A frontal and a lateral phantom radiograph of 96 px (the tiny model reads 64 px)."""
    study = make_chest_radiograph([NODULE], seed=5, size=96)
    return write_study_images(tmp_path_factory.mktemp("phantom"), study)


def assert_usable_map(heat: np.ndarray, shape: tuple[int, ...]) -> None:
    assert heat.shape == shape
    assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() > heat.min()


def test_sentence_scores_are_the_log_probabilities_the_language_model_loss_gives(drafter, phantom_paths):
    sample = drafter.prepare(phantom_paths)
    ids, _ = hand_written_draft(drafter)
    images, view_mask = sample["image"][None], sample["view_mask"]
    bos = drafter.model.config.text_config.bos_token_id
    input_ids = torch.tensor([[bos, *ids]])
    labels = input_ids.clone()
    labels[0, 0] = IGNORE_INDEX

    with torch.no_grad():
        mean_loss = drafter.model(images, view_mask[None], input_ids, labels=labels).loss
        whole_draft = SentenceLogProbs(drafter.model, view_mask, ids, [(0, len(ids))])(images)

    assert whole_draft.shape == (1, 1)
    assert whole_draft.item() == pytest.approx(-mean_loss.item() * len(ids), rel=1e-4)


@pytest.mark.parametrize("variant", ["hirescam", "classic"])
def test_gradcam_gives_each_sentence_a_map_on_each_views_original_pixels(drafter, phantom_paths, variant):
    sample = drafter.prepare(phantom_paths)
    ids, sentences = hand_written_draft(drafter)

    maps = gradcam_maps(drafter.model, sample, ids, sentences, variant=variant)

    assert len(sentences) == 3 and len(maps) == 3
    for views in maps:
        assert len(views) == 2
        for heat in views:
            assert_usable_map(heat, (96, 96))


def test_an_unknown_gradcam_variant_is_refused(drafter, phantom_paths):
    ids, sentences = hand_written_draft(drafter)

    with pytest.raises(ConfigError, match="unknown Grad-CAM variant 'scorecam'; known: hirescam, classic"):
        gradcam_maps(drafter.model, drafter.prepare(phantom_paths), ids, sentences, variant="scorecam")


def test_gradcam_maps_are_shares_of_the_feature_grid(drafter, phantom_paths):
    sample = drafter.prepare(phantom_paths)
    ids, sentences = hand_written_draft(drafter)

    grids = sentence_gradcam(drafter.model, sample["image"][None], sample["view_mask"], ids, sentence_spans(sentences))

    assert grids.shape == (3, 2, 4, 4)  # 64 px through stage 3 (stride 16)
    assert torch.allclose(grids.sum(dim=(1, 2, 3)), torch.ones(3))


def test_gradcam_leaves_the_model_as_it_was(drafter, phantom_paths):
    model = drafter.model
    sample = drafter.prepare(phantom_paths)
    ids, sentences = hand_written_draft(drafter)
    last_stage = model.encoder.stages[-1]

    first = gradcam_maps(model, sample, ids, sentences)
    second = gradcam_maps(model, sample, ids, sentences)

    assert model.encoder.stages[-1] is last_stage and not model.training
    assert not any(module._forward_hooks or module._backward_hooks for module in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert all(np.array_equal(a, b) for views_a, views_b in zip(first, second) for a, b in zip(views_a, views_b))


def test_a_frontal_only_study_gets_one_map_per_sentence(drafter, tmp_path):
    frontal = make_chest_radiograph([NODULE], seed=6, size=(80, 96), views=("frontal",))
    paths = write_study_images(tmp_path, frontal)
    ids, sentences = hand_written_draft(drafter)

    maps = gradcam_maps(drafter.model, drafter.prepare(paths), ids, sentences)

    assert [len(views) for views in maps] == [1, 1, 1]
    assert_usable_map(maps[0][0], (80, 96))


def test_an_empty_draft_has_no_maps(drafter, phantom_paths):
    assert gradcam_maps(drafter.model, drafter.prepare(phantom_paths), [], []) == []


def test_gradcam_of_a_volume_gives_a_map_per_voxel_of_every_slice(tmp_path):
    drafter = Drafter(save_tiny_model(tmp_path / "tiny3d", spatial_dims=3), device="cpu")
    volume = make_chest_ct([Finding("pleural_effusion", side="left")], seed=3, shape=(40, 36, 24)).view("ct")
    ids, sentences = hand_written_draft(drafter)

    maps = gradcam_maps(drafter.model, drafter.prepare(write_nifti(tmp_path / "ct.nii.gz", volume)), ids, sentences)

    assert len(maps) == 3
    assert_usable_map(maps[0][0], (40, 36, 24))


def test_occlusion_maps_are_on_each_views_original_pixels(drafter, phantom_paths):
    sample = drafter.prepare(phantom_paths)
    ids, sentences = hand_written_draft(drafter)

    maps = occlusion_maps(drafter.model, sample, ids, sentences, mask_size=32, overlap=0.5)

    assert len(maps) == 3
    assert_usable_map(maps[0][0], (96, 96))
    assert_usable_map(maps[0][1], (96, 96))
