"""The training loop: the loss falls, the best model is saved, --resume continues exactly."""

from __future__ import annotations

import json

import pytest
import yaml
from train_fixtures import tiny_run

from medvl.cli import main
from medvl.errors import ConfigError
from medvl.model.loading import load_model
from medvl.train.batching import study_sampler
from medvl.train.config import TrainConfig
from medvl.train.loop import learning_rate_factor, train

pytestmark = pytest.mark.slow


def losses(run_dir) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_training_lowers_the_validation_loss_and_saves_a_loadable_best_model(tmp_path):
    config = TrainConfig.from_dict(tiny_run(tmp_path))

    best = train(config)

    history = losses(tmp_path / "run")
    assert len(history) == 6
    assert history[-1] < 0.75 * history[0]
    model, tokenizer = load_model(best)
    assert model.config.text["max_length"] == 120 and len(tokenizer) > 20

    train(config)  # a fresh run in the same folder starts a fresh log
    assert len(losses(tmp_path / "run")) == 6


def test_resume_after_a_stop_continues_to_the_same_step_count(tmp_path):
    values = tiny_run(tmp_path, epochs=2)
    values["data"]["abnormal_weight"] = 3.0  # resumes through the weighted sampler too
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump({**values, "train": {**values["train"], "max_steps": 5}}))
    assert main(["train", "--config", str(config_path)]) == 0  # stops after 5 of 16 steps
    first = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert first[-1]["step"] == 5

    config_path.write_text(yaml.safe_dump(values))
    assert main(["train", "--config", str(config_path), "--resume"]) == 0

    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 16  # 8 batches per epoch x 2 epochs, nothing trained twice
    assert not list((tmp_path / "run" / "checkpoints").glob("*.tmp"))


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint to resume from"):
        train(TrainConfig.from_dict(tiny_run(tmp_path)), resume=True)


def test_config_typos_are_refused_with_the_key_named(tmp_path):
    values = tiny_run(tmp_path)
    values["train"]["learning_rte"] = 1e-3
    with pytest.raises(ConfigError, match="train: unknown key\\(s\\) learning_rte"):
        TrainConfig.from_dict(values)


def shares_drawn(sampler, groups: list[str], epochs: int = 5) -> dict[str, float]:
    """The share of draws of each group over ``epochs`` epochs."""
    draws = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        draws += list(sampler)
    return {group: sum(groups[index] == group for index in draws) / len(draws) for group in set(groups)}


NODULE = {"kind": "nodule", "side": "left"}
TUBE = {"kind": "support_device", "device": "endotracheal_tube"}


def test_abnormal_weight_draws_studies_with_findings_that_many_times_as_often():
    findings = [[NODULE] if index % 4 == 0 else [] for index in range(400)]  # 100 abnormal, 300 normal
    sampler = study_sampler(findings, 3.0, False, seed=7)

    draws = []
    for epoch in range(5):
        sampler.set_epoch(epoch)
        draws.append(list(sampler))
    share = sum(bool(findings[index]) for draw in draws for index in draw) / (5 * 400)

    assert all(len(draw) == 400 for draw in draws)
    assert share == pytest.approx(300 / 600, abs=0.03)  # 100 x 3 against 300 x 1
    assert draws[0] != draws[1]
    again = study_sampler(findings, 3.0, False, seed=7)
    again.set_epoch(4)
    assert list(again) == draws[4]  # every process draws the same epoch
    assert study_sampler(findings, 1.0, False, seed=7) is None


def test_balanced_findings_draw_a_rare_device_as_often_as_a_common_nodule():
    groups = ["normal"] * 200 + ["nodule"] * 160 + ["tube"] * 40
    findings = [{"normal": [], "nodule": [NODULE], "tube": [TUBE]}[group] for group in groups]

    shares = shares_drawn(study_sampler(findings, 1.0, True, seed=3), groups)

    assert shares["tube"] == pytest.approx(0.25, abs=0.03)  # was 0.10
    assert shares["nodule"] == pytest.approx(0.25, abs=0.03)
    assert shares["normal"] == pytest.approx(0.50, abs=0.03)  # the abnormal studies keep their share


def test_a_non_positive_abnormal_weight_is_refused(tmp_path):
    values = tiny_run(tmp_path)
    values["data"]["abnormal_weight"] = 0
    with pytest.raises(ConfigError, match="data.abnormal_weight"):
        TrainConfig.from_dict(values)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    factors = [learning_rate_factor(step, 10, 100, 0.1) for step in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[100] == pytest.approx(0.1)


def test_training_stops_after_patience_validations_without_improvement(tmp_path):
    # a learning rate below float precision leaves the weights unchanged, and a frozen encoder its
    # batch-norm statistics: the validation loss stays exactly the same
    values = tiny_run(tmp_path, epochs=6, learning_rate=1e-30, patience=2)
    config = TrainConfig.from_dict({**values, "finetune": {"freeze": ["encoder"]}})

    train(config)

    assert len(losses(tmp_path / "run")) == 3  # the first sets the best, two more without a better one
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 3
