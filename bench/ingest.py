"""Benchmark: loading DICOM series with medvl against raw pydicom read-and-decode.

For each series (the real ones under ``--shared-data``/dicom, and a phantom CT series of
``--slices`` slices at ``--size`` x ``--size`` written here), it times, in the same run and
in fresh processes so peak memory is each one's own:

* ``pydicom``: ``dcmread`` + ``pixel_array`` + ``apply_modality_lut`` of every file, nothing else;
* ``medvl``: ``medvl.io.load_study(folder)``: header scan, sort along the slice normal,
  geometry checks, decode, modality LUT, stacking into a float32 MetaTensor.

It prints the median time of ``--repeats`` runs, the ratio medvl / pydicom, and how much the
peak resident memory grew while reading (imports excluded).

    python bench/ingest.py --shared-data ../shared/data
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

DICOM_SERIES = ("mr_t1_sagittal_series", "ct_3slice_series", "mr_adc_20slice_series")


def read_with_pydicom(folder: Path) -> int:
    """Raw baseline: read and decode every file of ``folder``; returns the voxel count."""
    import pydicom
    from pydicom.pixels import apply_modality_lut

    voxels = 0
    for path in sorted(folder.iterdir()):
        dataset = pydicom.dcmread(path)
        voxels += apply_modality_lut(dataset.pixel_array, dataset).size
    return voxels


def read_with_medvl(folder: Path) -> int:
    """medvl: the whole study as one volume; returns the voxel count."""
    from medvl.io import load_study

    return sum(view.image.numel() for view in load_study(folder).views)


READERS = {"pydicom": read_with_pydicom, "medvl": read_with_medvl}


def _import_reader(reader: str) -> None:
    if reader == "medvl":
        import medvl.io  # noqa: F401  (torch, MONAI)
    else:
        import pydicom.pixels  # noqa: F401


def _resident_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process from /proc, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _measure(reader: str, folder: Path, queue: multiprocessing.Queue) -> None:
    _import_reader(reader)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before_mib = _resident_mib("VmRSS")
    start = time.perf_counter()
    voxels = READERS[reader](folder)
    seconds = time.perf_counter() - start
    queue.put((seconds, _resident_mib("VmHWM") - before_mib, voxels))


def measure(reader: str, folder: Path, repeats: int) -> tuple[float, float, int]:
    """Median seconds, largest peak-RSS growth while reading (MiB) and voxel count, over
    ``repeats`` fresh processes (the files are in the page cache after the first)."""
    context = multiprocessing.get_context("spawn")
    results = []
    for _ in range(repeats):
        queue = context.Queue()
        process = context.Process(target=_measure, args=(reader, folder, queue))
        process.start()
        results.append(queue.get())
        process.join()
    return statistics.median(r[0] for r in results), max(r[1] for r in results), results[0][2]


def write_phantom_series(folder: Path, slices: int, size: int) -> Path:
    """A phantom chest CT of ``size`` x ``size`` x ``slices`` as a shuffled-name DICOM series."""
    from medvl.data.phantom import make_chest_ct, write_ct_dicom_series

    study = make_chest_ct(seed=0, shape=(size, size, slices), spacing=(0.75, 0.75, 1.0))
    write_ct_dicom_series(folder, study.view("ct"), uid_seed="1.2.826.0.1.3680043.10.1078.1", shuffle_names=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-data", type=Path, default=None, help="the shared data folder (its dicom/ series)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="medvl-bench-") as tmp:
        series: dict[str, Path] = {}
        if args.shared_data is not None:
            series.update({name: args.shared_data / "dicom" / name for name in DICOM_SERIES})
        start = time.perf_counter()
        name = f"phantom_ct_{args.size}x{args.size}x{args.slices}"
        series[name] = write_phantom_series(Path(tmp) / name, args.slices, args.size)
        print(f"wrote {name} in {time.perf_counter() - start:.1f} s")

        print(f"{'series':<30} {'files':>5} {'Mvoxels':>8} {'pydicom s':>10} {'medvl s':>8} {'ratio':>6} "
              f"{'pydicom MiB':>12} {'medvl MiB':>10}")
        for name, folder in series.items():
            files = sum(1 for _ in folder.iterdir())
            raw_s, raw_mib, voxels = measure("pydicom", folder, args.repeats)
            medvl_s, medvl_mib, _ = measure("medvl", folder, args.repeats)
            print(f"{name:<30} {files:>5} {voxels / 1e6:>8.1f} {raw_s:>10.3f} {medvl_s:>8.3f} "
                  f"{medvl_s / raw_s:>6.2f} {raw_mib:>12.0f} {medvl_mib:>10.0f}")
    print("ratio = medvl time / raw pydicom time (median of repeats, each in a fresh process); "
          "MiB = growth of peak resident memory while reading, after the imports")


if __name__ == "__main__":
    main()
