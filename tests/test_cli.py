"""The command line: one line per bad input, batches go on past bad studies."""

from __future__ import annotations

import json

from medvl.cli import main
from medvl.data.manifest import read_manifest


def test_info_prints_sample_summary_and_goes_past_a_bad_study(tmp_path, capsys):
    bad = tmp_path / "broken.dcm"
    bad.write_text("this is not DICOM")

    code = main(["info", "sample:chest-xray", str(bad), "sample:chest-ct"])

    out, err = capsys.readouterr()
    assert code == 1
    summaries = [json.loads(chunk) for chunk in out.replace("}\n{", "}\n\x00{").split("\x00")]
    assert [s["path"] for s in summaries] == ["sample:chest-xray", "sample:chest-ct"]
    assert [v["role"] for v in summaries[0]["views"]] == ["frontal", "lateral"]
    assert summaries[1]["views"][0]["size"] == [64, 64, 48]
    assert err.strip().splitlines() == [f"medvl: skipped {bad}: not a DICOM file: no 'DICM' marker after the 128-byte preamble"]


def test_synth_writes_a_dataset_whose_manifest_validates(tmp_path, capsys):
    code = main(["synth", "--out", str(tmp_path / "ds"), "--n", "12", "--size", "96", "--seed", "3"])

    assert code == 0
    rows = read_manifest(tmp_path / "ds" / "manifest.jsonl")
    assert len(rows) == 12
    assert {row.split for row in rows} <= {"train", "val", "test"}
    assert all(len(row.images) == 2 and row.masks is not None for row in rows if row.findings)
