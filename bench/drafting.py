"""Benchmark: drafting speed of a model, against generation without a KV cache and against the
machine's own matrix-multiply rate, all measured in the same run.

Prints, for one two-view study at batch 1: latency p50 / p95; at batch 32: studies per second
and generated tokens per second; the same with ``use_cache=False`` and the speed-up the KV cache
gives; the FLOP rate of a large float32 matmul on this machine, and the share of it that batch-32
drafting reaches (its FLOPs counted by ``torch.utils.flop_counter``); peak memory growth.

    python bench/drafting.py                     # the embedded default model
    python bench/drafting.py --model runs/default_cxr/best --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from medvl.data.dataset import collate
from medvl.model.decoding import DecodingConfig
from medvl.report.drafting import Drafter
from medvl.report.generation import generate_ids


def resident_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_memory() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def timed(function, repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls (after one warm-up call)."""
    function()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 matrix-multiply rate (GFLOP/s) on ``size`` x ``size`` matrices."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = min(timed(lambda: a @ b, repeats))
    return 2 * size**3 / best / 1e9


def counted_flops(function) -> int:
    """Floating-point operations of one call, as ``torch.utils.flop_counter`` counts them."""
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the embedded model)")
    parser.add_argument("--study", default="sample:chest-xray", help="the study drafted (default: a bundled sample)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    torch.manual_seed(0)
    drafter = Drafter(args.model)
    model = drafter.model
    sample = drafter.prepare(args.study)
    single = collate([sample])
    many = collate([sample] * args.batch)
    decoding = drafter.decoding
    no_cache = decoding.updated(use_cache=False)
    print(f"model {model.config.model_name} {drafter.version}; {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
          f"parameters; {model.n_visual_tokens} visual tokens; decoding {decoding.to_dict()}; "
          f"torch threads {torch.get_num_threads()}")

    def draft(batch: dict, settings: DecodingConfig) -> list[list[int]]:
        return generate_ids(model, batch["image"], batch["view_mask"], settings, drafter.tokenizer)

    latencies = timed(lambda: draft(single, decoding), args.repeats)
    p50, p95 = np.percentile(latencies, 50) * 1000, np.percentile(latencies, 95) * 1000
    print(f"batch 1 latency: p50 {p50:.0f} ms, p95 {p95:.0f} ms over {args.repeats} runs")

    reset_peak_memory()
    before = resident_mib("VmRSS")
    results = {}
    for name, settings in (("kv cache", decoding), ("no cache", no_cache)):
        tokens = sum(len(ids) for ids in draft(many, settings))
        seconds = statistics.median(timed(lambda s=settings: draft(many, s), max(3, args.repeats // 3)))
        results[name] = seconds
        print(f"batch {args.batch} ({name}): {seconds:.2f} s, {args.batch / seconds:.1f} studies/s, "
              f"{tokens / seconds:.0f} generated tokens/s ({tokens} tokens)")
    peak = resident_mib("VmHWM") - before
    print(f"KV cache speed-up at batch {args.batch}: {results['no cache'] / results['kv cache']:.2f}x")

    flops = counted_flops(lambda: draft(many, decoding))
    achieved = flops / results["kv cache"] / 1e9
    peak_rate = matmul_gflops()
    print(f"matmul 2048x2048 float32: {peak_rate:.1f} GFLOP/s")
    print(f"batch {args.batch} drafting: {flops / 1e9:.1f} GFLOP in {results['kv cache']:.2f} s = {achieved:.1f} GFLOP/s, "
          f"{100 * achieved / peak_rate:.1f}% of the matmul rate")
    print(f"peak memory growth while drafting at batch {args.batch}: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
