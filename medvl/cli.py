"""The ``medvl`` command line. Presentation only: every command calls the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from medvl.errors import MedVLError

if TYPE_CHECKING:
    from medvl.io import Study
    from medvl.report.draft import Draft


def _cmd_info(args: argparse.Namespace) -> int:
    """Print an identifier-free summary of each study; go on past bad ones."""
    from medvl.io import load_study
    from medvl.samples import resolve_study_path

    failures = 0
    for path in args.paths:
        try:
            study = load_study(resolve_study_path(path), series_uid=args.series_uid)
        except MedVLError as error:
            print(f"medvl: skipped {error}", file=sys.stderr)
            failures += 1
            continue
        print(json.dumps({"path": str(path), **study.summary()}, indent=2))
    return 1 if failures else 0


def _cmd_synth(args: argparse.Namespace) -> int:
    """Write a phantom dataset and its manifest (``iu-phantom``: the IU X-ray reports' findings drawn)."""
    from medvl.data.phantom.dataset import write_phantom_dataset

    if args.kind == "iu-phantom":
        return _synth_iu_phantom(args)

    manifest = write_phantom_dataset(
        args.out,
        args.n,
        spatial_dims=args.dims,
        seed=args.seed,
        mode=args.mode,
        normal_fraction=args.normal_fraction,
        views=tuple(args.views.split(",")),
        image_format=args.format,
        splits=tuple(float(share) for share in args.splits.split(",")),
        **({"image_size": args.size} if args.size else {}),
    )
    print(f"wrote {args.n} phantom studies; manifest: {manifest}")
    return 0


def _synth_iu_phantom(args: argparse.Namespace) -> int:
    from medvl.data.iu_phantom import write_iu_phantom

    if args.annotation is None:
        print("medvl: synth iu-phantom needs --annotation (iu_xray/annotation.json)", file=sys.stderr)
        return 2
    manifest = write_iu_phantom(
        args.annotation, args.out, seed=args.seed, image_size=args.size or 192, views=tuple(args.views.split(",")),
        limit=args.limit, progress=True,
    )
    print(f"wrote the IU-phantom set; manifest: {manifest}")
    return 0


DECODING_FLAGS = {  # flag -> DecodingConfig field
    "beams": "num_beams",
    "max_new_tokens": "max_new_tokens",
    "min_new_tokens": "min_new_tokens",
    "no_repeat_ngram_size": "no_repeat_ngram_size",
    "length_penalty": "length_penalty",
    "consensus": "consensus_candidates",
    "finding_check": "finding_check",
    "finding_bias": "finding_bias",
    "state_findings": "state_findings",
    "report_bank": "report_bank",
}


def _add_decoding_flags(command: argparse.ArgumentParser) -> None:
    """The decoding options of ``report`` and ``eval`` (each defaults to the model's setting)."""
    command.add_argument("--beams", type=int, default=None, help="beam width (default: the model's)")
    command.add_argument("--max-new-tokens", type=int, default=None, help="longest draft in tokens")
    command.add_argument("--min-new-tokens", type=int, default=None, help="shortest draft in tokens")
    command.add_argument("--no-repeat-ngram-size", type=int, default=None, help="never repeat an n-gram of this size")
    command.add_argument("--length-penalty", type=float, default=None, help="beam search: > 1 favours longer drafts")
    command.add_argument(
        "--consensus", type=int, default=None, metavar="N",
        help="keep the consensus (minimum Bayes risk, BLEU) of N beam candidates (default: the model's; 1: off)",
    )
    command.add_argument(
        "--finding-check", action=argparse.BooleanOptionalAction, default=None,
        help="keep a beam candidate that states what the finding head sees (default: the model's)",
    )
    command.add_argument(
        "--finding-bias", type=float, default=None, metavar="B",
        help="favour the words naming a finding the head sees by B (log-probability; default: the model's)",
    )
    command.add_argument(
        "--state-findings", action=argparse.BooleanOptionalAction, default=None,
        help="edit the draft to state what the finding head sees, in the model's finding sentences (default: the model's)",
    )
    command.add_argument(
        "--report-bank", choices=("off", "choose", "consensus"), default=None,
        help="choose the draft against the model's training reports of the findings the head sees; consensus: "
        "their consensus report competes too (default: the model's)",
    )


def _decoding_changes(args: argparse.Namespace) -> dict[str, float]:
    """The decoding settings given on the command line (the model's defaults for the rest)."""
    changes = {field: getattr(args, flag, None) for flag, field in DECODING_FLAGS.items()}
    return {name: value for name, value in changes.items() if value is not None}


REPORT_FORMATS = ("text", "json", "sr", "fhir")


def _report_formats(value: str) -> list[str]:
    """``--format``: a comma-separated list of :data:`REPORT_FORMATS` (``both``: text and JSON)."""
    formats = [name.strip() for name in value.replace("both", "text,json").split(",") if name.strip()]
    unknown = sorted(set(formats) - set(REPORT_FORMATS))
    if unknown or not formats:
        raise argparse.ArgumentTypeError(f"unknown format(s) {', '.join(unknown) or value!r}; choose from {', '.join(REPORT_FORMATS)}, both")
    return formats


def _cmd_report(args: argparse.Namespace) -> int:
    """Draft reports: print them, or write text/JSON/SR/FHIR (and attention overlays) to --out."""
    from tqdm.auto import tqdm

    from medvl.report.drafting import Drafter

    if args.out is None and ({"sr", "fhir"} & set(args.format)):
        print("medvl: --format sr and fhir write files: give --out", file=sys.stderr)
        return 2
    drafter = Drafter(args.model, decoding=_decoding_changes(args))
    explain = args.out is not None and args.overlay
    failures = 0
    results = drafter.iter_drafts(args.paths, batch_size=args.batch_size, explain=explain)
    for path, result, study in tqdm(results, total=len(args.paths), desc="draft", disable=len(args.paths) < 2):
        if isinstance(result, MedVLError):
            print(f"medvl: skipped {result}", file=sys.stderr)
            failures += 1
        elif args.out is None:
            print(result.to_json() if args.format == ["json"] else result.to_text())
        else:
            try:
                written = _write_draft(result, study, path, args.out, args.format, explain)
            except MedVLError as error:
                print(f"medvl: skipped {error}", file=sys.stderr)
                failures += 1
                continue
            print(f"{path}: " + ", ".join(map(str, written)))
    return 1 if failures else 0


def _write_draft(draft: Draft, study: Study, study_input: object, out: Path, formats: list[str], overlay: bool) -> list[Path]:
    """Write a draft in ``formats`` (text, JSON, DICOM SR, FHIR), and its attention overlay, into ``out``."""
    from medvl.explain.overlay import draft_overlay, save_png
    from medvl.files import atomic_write_text
    from medvl.report.export import EXPORT_SUFFIXES, write_exports

    written = []
    if "text" in formats:
        written.append(out / f"{draft.study}.txt")
        atomic_write_text(written[-1], draft.to_text())
    if "json" in formats:
        written.append(out / f"{draft.study}.json")
        atomic_write_text(written[-1], draft.to_json())
    written += write_exports(draft, study_input, out, [name for name in formats if name in EXPORT_SUFFIXES])
    if overlay:
        written.append(save_png(draft_overlay(draft, study), out / f"{draft.study}_attention.png"))
    return written


def _cmd_train(args: argparse.Namespace) -> int:
    """Train a model from a YAML config (``--resume`` continues from the last checkpoint)."""
    from medvl.train.config import TrainConfig
    from medvl.train.loop import train

    best = train(TrainConfig.from_yaml(args.config), resume=args.resume)
    print(f"best model: {best}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit a model's finding thresholds on a manifest's split, mine its finding sentences from the
    training split, and write both into its config.json."""
    from medvl.model.config import MedVLConfig
    from medvl.model.loading import resolve_model_dir
    from medvl.train.calibration import calibrate

    thresholds = calibrate(args.model, args.data, split=args.split, max_studies=args.limit)
    sentences = MedVLConfig.from_pretrained(resolve_model_dir(args.model)).finding_sentences
    for label, threshold in thresholds.items():
        print(f"{label:40s} {threshold:.3f}  {sentences.get(label, '(no finding sentence)')}")
    print(f"thresholds and finding sentences written to {resolve_model_dir(args.model) / 'config.json'}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    """Draft a manifest's split and write finding accuracy and word-overlap scores."""
    from medvl.evaluate.run import DEFAULT_METRICS, evaluate, summary_lines

    if args.grounding:
        return _grounding(args)
    metrics = (*DEFAULT_METRICS, "meteor") if args.meteor else DEFAULT_METRICS
    scores = evaluate(
        args.data, args.out, model=args.model, split=args.split, decoding=_decoding_changes(args), metrics=metrics,
        batch_size=args.batch_size, limit=args.limit, progress=True,
    )
    print("\n".join(summary_lines(scores)))
    print(f"scores: {args.out / 'eval.json'}")
    return 0


def _grounding(args: argparse.Namespace) -> int:
    """``medvl eval --grounding``: pointing game and mass in the lesion mask, per finding kind."""
    from medvl.evaluate.grounding import grounding_lines, grounding_table
    from medvl.files import atomic_write_text

    table = grounding_table(
        args.model, args.data, split=args.split, limit=args.limit, methods=args.maps, tolerance=args.tolerance,
        decoding=_decoding_changes(args), batch_size=args.batch_size, progress=True,
    )
    atomic_write_text(args.out / "grounding.json", json.dumps(table, indent=2) + "\n")
    print("\n".join(grounding_lines(table)))
    print(f"grounding: {args.out / 'grounding.json'}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    """De-identify a PACS export and join its reports into a manifest with patient-level splits."""
    from medvl.data.ingest import IngestConfig, ingest

    config = IngestConfig.from_yaml(args.config) if args.config else IngestConfig()
    summary = ingest(args.dicom_root, args.reports, args.out, config)
    print(summary.describe())
    return 0 if summary.manifest is not None else 1


def _cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the Streamlit dashboard until interrupted."""
    from medvl.dashboard import run_dashboard

    return run_dashboard(host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, model=args.model)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every ``medvl`` sub-command."""
    parser = argparse.ArgumentParser(prog="medvl", description="Draft radiology reports from medical scans.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="load studies and print their (identifier-free) summary")
    info.add_argument("paths", nargs="+", help="DICOM file or folder, NIfTI, PNG/JPEG, a study folder, or sample:<name>")
    info.add_argument("--series-uid", default=None, help="pick one series in a folder that holds several")
    info.set_defaults(run=_cmd_info)

    synth = commands.add_parser("synth", help="write a synthetic phantom dataset with ground truth and a manifest")
    synth.add_argument("kind", nargs="?", choices=("phantom", "iu-phantom"), default="phantom",
                       help="phantom (default): random findings; iu-phantom: each IU X-ray report's findings drawn")
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument("--annotation", type=Path, default=None, help="iu-phantom: the R2Gen annotation.json")
    synth.add_argument("--limit", type=int, default=None, help="iu-phantom: at most this many reports")
    synth.add_argument("--n", type=int, default=200, help="number of studies (default 200)")
    synth.add_argument("--dims", type=int, choices=(2, 3), default=2, help="2D radiographs or 3D CT (default 2)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--mode", choices=("single", "mixed"), default="single", help="one finding per study, or several")
    synth.add_argument("--normal-fraction", type=float, default=0.3, help="share of studies without findings")
    synth.add_argument("--views", default="frontal,lateral", help="radiograph views, comma separated")
    synth.add_argument("--format", choices=("png", "dicom", "nifti"), default="png", help="image file format")
    synth.add_argument("--size", type=int, default=None, help="image size in pixels (default: the generator's)")
    synth.add_argument("--splits", default="0.8,0.1,0.1", help="train,val,test shares (0,0,1: a held-out test set)")
    synth.set_defaults(run=_cmd_synth)
    report = commands.add_parser("report", help="draft radiology reports for studies")
    report.add_argument("paths", nargs="+", help="DICOM file or folder, NIfTI, PNG/JPEG, a study folder, or sample:<name>")
    report.add_argument("--model", default=None, help="model folder, or an embedded model: cxr (default), ct, iu")
    report.add_argument("--out", type=Path, default=None, help="write drafts here instead of printing them")
    report.add_argument(
        "--format", type=_report_formats, default=["text", "json"],
        help="what to write, comma separated: text, json, sr (DICOM SR, DICOM studies only), fhir "
        "(FHIR R4 DiagnosticReport); both = text,json (the default)",
    )
    report.add_argument("--no-overlay", dest="overlay", action="store_false", help="do not write attention overlays")
    report.add_argument("--batch-size", type=int, default=8)
    _add_decoding_flags(report)
    report.set_defaults(run=_cmd_report)

    train = commands.add_parser("train", help="train a model from a YAML config")
    train.add_argument("--config", type=Path, required=True, help="training config (see configs/)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint of this run")
    train.set_defaults(run=_cmd_train)

    ingest = commands.add_parser("ingest", help="de-identify a DICOM tree, join its reports, write a manifest")
    ingest.add_argument("dicom_root", type=Path, help="folder of DICOM files (any nesting)")
    ingest.add_argument("--reports", type=Path, required=True, help="report export (CSV or JSONL)")
    ingest.add_argument("--out", type=Path, required=True, help="output folder (de-identified copies + manifest)")
    ingest.add_argument("--config", type=Path, default=None, help="series rules and join keys (configs/ingest_example.yaml)")
    ingest.set_defaults(run=_cmd_ingest)

    dashboard = commands.add_parser("dashboard", help="serve the dashboard (http://127.0.0.1:8501, this machine only)")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    dashboard.add_argument("--port", type=int, default=8501)
    dashboard.add_argument("--max-upload-mb", type=int, default=512, help="largest uploaded file (default 512 MB)")
    dashboard.add_argument("--model", default=None, help="model for every study (default: cxr for radiographs, ct for volumes)")
    dashboard.set_defaults(run=_cmd_dashboard)

    calibration = commands.add_parser(
        "calibrate", help="fit a model's finding thresholds (its finding prompt's verdicts) on a split"
    )
    calibration.add_argument("--model", required=True, help="model folder (its config.json is rewritten)")
    calibration.add_argument("--data", type=Path, required=True, help="a manifest, or a folder holding manifest.jsonl")
    calibration.add_argument("--split", default="val", help="which split to fit on (default val)")
    calibration.add_argument("--limit", type=int, default=None, help="use at most this many studies")
    calibration.set_defaults(run=_cmd_calibrate)

    evaluation = commands.add_parser("eval", help="draft a manifest's studies and score the drafts")
    evaluation.add_argument("--data", type=Path, required=True, help="a manifest, or a folder holding manifest.jsonl")
    evaluation.add_argument("--out", type=Path, required=True, help="folder for eval.json and drafts.jsonl")
    evaluation.add_argument("--model", default=None, help="model folder, or an embedded model: cxr (default), ct, iu")
    evaluation.add_argument("--split", default="test", help="which split to draft (default test)")
    evaluation.add_argument("--limit", type=int, default=None, help="draft at most this many studies")
    evaluation.add_argument("--batch-size", type=int, default=16)
    _add_decoding_flags(evaluation)
    evaluation.add_argument("--meteor", action="store_true", help="also compute METEOR (needs Java)")
    evaluation.add_argument("--grounding", action="store_true",
                            help="score the maps instead: pointing game and mass inside the lesion masks (phantoms)")
    evaluation.add_argument("--maps", nargs="+", default=["attention", "gradcam"], choices=("attention", "gradcam", "occlusion"),
                            help="--grounding: which maps (default attention gradcam)")
    evaluation.add_argument("--tolerance", type=float, default=0.0, help="--grounding: pixels a peak may miss the mask by")
    evaluation.set_defaults(run=_cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medvl`` console script."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except MedVLError as error:
        print(f"medvl: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
