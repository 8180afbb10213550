"""Scale-out and fault tolerance: two training processes agree; SIGKILL then --resume finishes the run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml
from train_fixtures import tiny_run

from medvl.data.phantom import write_phantom_dataset
from medvl.model.loading import load_model

pytestmark = pytest.mark.slow


def medvl_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(tmp_path, name: str, **loop) -> str:
    values = tiny_run(tmp_path / name, **loop)
    values["data"] = tiny_run(tmp_path)["data"]  # every run reads the same phantoms
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def summary(tmp_path, name: str) -> dict:
    return json.loads((tmp_path / name / "run" / "summary.json").read_text())


@pytest.fixture
def phantoms(tmp_path):
    write_phantom_dataset(tmp_path / "data", 40, seed=5, image_size=96, views=("frontal",))
    return tmp_path


def test_two_processes_train_one_model_with_identical_weights(phantoms):
    config = write_config(phantoms, "ddp", epochs=1, max_steps=4, checkpoint_every_steps=2)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "medvl",
        "train",
        "--config",
        config,
    ]

    done = subprocess.run(command, check=False, env=medvl_env(), capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stderr[-3000:]
    result = summary(phantoms, "ddp")
    assert result["processes"] == 2 and result["steps"] == 4
    assert len(result["weight_checksums"]) == 2 and len(set(result["weight_checksums"])) == 1


def test_a_killed_training_resumes_from_its_last_checkpoint_to_the_same_step_count(phantoms):
    steps = {"epochs": 4, "checkpoint_every_steps": 2}  # 8 batches an epoch: 32 steps
    uninterrupted = write_config(phantoms, "whole", **steps)
    interrupted = write_config(phantoms, "killed", **steps)
    subprocess.run(
        [sys.executable, "-m", "medvl", "train", "--config", uninterrupted],
        env=medvl_env(),
        check=True,
        capture_output=True,
        timeout=600,
    )

    process = subprocess.Popen(
        [sys.executable, "-m", "medvl", "train", "--config", interrupted],
        env=medvl_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = phantoms / "killed" / "run" / "checkpoints" / "last"
    deadline = time.monotonic() + 300
    while not checkpoint.is_dir() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "training finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (phantoms / "killed" / "run" / "summary.json").exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "medvl", "train", "--config", interrupted, "--resume"], check=False,
        env=medvl_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert summary(phantoms, "killed")["steps"] == summary(phantoms, "whole")["steps"] == 32
    model, _ = load_model(phantoms / "killed" / "run" / "best")  # the best model of the resumed run loads
    assert model.config.text["max_length"] == 120
    assert not list(checkpoint.parent.glob("last.*"))  # no half-written checkpoint left behind
