"""The worked example in notebooks/ runs top to bottom on the embedded default model."""

from __future__ import annotations

from pathlib import Path

import pytest

from medvl import DRAFT_NOTICE
from medvl.samples import sample_card

nbformat = pytest.importorskip("nbformat", reason="running notebooks needs nbformat, nbclient and ipykernel")
nbclient = pytest.importorskip("nbclient", reason="running notebooks needs nbformat, nbclient and ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "draft_and_explain.ipynb"


def test_draft_and_explain_notebook_drafts_plots_and_names_the_sample_finding(tmp_path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # importing streamlit sets Agg, which shows no figure
    notebook = nbformat.read(NOTEBOOK, as_version=4)

    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    printed = "".join(output.text for output in outputs if output.get("name") == "stdout")
    figures = [output for output in outputs if "image/png" in output.get("data", {})]
    truth = sample_card("chest-xray")["findings"][0]
    assert printed.startswith(DRAFT_NOTICE)
    assert figures  # at least the attention maps
    assert f"draft names:      [('{truth['kind']}', '{truth['side']}')]" in printed
