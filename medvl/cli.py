"""The ``medvl`` command line. Presentation only: every command calls the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from medvl.errors import MedVLError


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
    """Write a phantom dataset and its manifest."""
    from medvl.data.phantom.dataset import write_phantom_dataset

    manifest = write_phantom_dataset(
        args.out,
        args.n,
        spatial_dims=args.dims,
        seed=args.seed,
        mode=args.mode,
        normal_fraction=args.normal_fraction,
        views=tuple(args.views.split(",")),
        image_format=args.format,
        **({"image_size": args.size} if args.size else {}),
    )
    print(f"wrote {args.n} phantom studies; manifest: {manifest}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every ``medvl`` sub-command."""
    parser = argparse.ArgumentParser(prog="medvl", description="Draft radiology reports from medical scans.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="load studies and print their (identifier-free) summary")
    info.add_argument("paths", nargs="+", help="DICOM file or folder, NIfTI, PNG/JPEG, a study folder, or sample:<name>")
    info.add_argument("--series-uid", default=None, help="pick one series in a folder that holds several")
    info.set_defaults(run=_cmd_info)

    synth = commands.add_parser("synth", help="write a synthetic phantom dataset with ground truth and a manifest")
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument("--n", type=int, default=200, help="number of studies (default 200)")
    synth.add_argument("--dims", type=int, choices=(2, 3), default=2, help="2D radiographs or 3D CT (default 2)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--mode", choices=("single", "mixed"), default="single", help="one finding per study, or several")
    synth.add_argument("--normal-fraction", type=float, default=0.3, help="share of studies without findings")
    synth.add_argument("--views", default="frontal,lateral", help="radiograph views, comma separated")
    synth.add_argument("--format", choices=("png", "dicom", "nifti"), default="png", help="image file format")
    synth.add_argument("--size", type=int, default=None, help="image size in pixels (default: the generator's)")
    synth.set_defaults(run=_cmd_synth)
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
