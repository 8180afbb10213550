"""Markdown tables of evaluation scores, one row per model or baseline.

A row is a scores mapping as :func:`medvl.evaluate.run.evaluate` and
:func:`medvl.evaluate.baselines.baseline_table` return them: ``{"nlg": {"BLEU_1": ...},
"clinical": {"micro": {...}, "macro": {...}}}``. :data:`SCORE_COLUMNS` names the columns and
where each value lives; columns that no row has are left out, a value one row lacks is "-".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SCORE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("BLEU-1", "nlg.BLEU_1"),
    ("BLEU-2", "nlg.BLEU_2"),
    ("BLEU-3", "nlg.BLEU_3"),
    ("BLEU-4", "nlg.BLEU_4"),
    ("METEOR", "nlg.METEOR"),
    ("ROUGE-L", "nlg.ROUGE_L"),
    ("CIDEr", "nlg.CIDEr"),
    ("Clinical P (micro)", "clinical.micro.precision"),
    ("Clinical R (micro)", "clinical.micro.recall"),
    ("Clinical F1 (micro)", "clinical.micro.f1"),
    ("Clinical F1 (macro)", "clinical.macro.f1"),
)


def scores_table(rows: Mapping[str, Mapping[str, Any]], digits: int = 3) -> str:
    """A Markdown table of ``rows`` (name -> scores), values rounded to ``digits`` decimals."""
    columns = [
        (title, path) for title, path in SCORE_COLUMNS if any(_lookup(s, path) is not None for s in rows.values())
    ]
    cells = [[name] + [_format(_lookup(scores, path), digits) for _, path in columns] for name, scores in rows.items()]
    return markdown_table(["", *(title for title, _ in columns)], cells, align_right_from=1)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align_right_from: int = 0) -> str:
    """A Markdown table; columns from ``align_right_from`` on are right-aligned (numbers)."""
    rule = ["---" if number < align_right_from else "---:" for number in range(len(header))]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in lines) + "\n"


def _lookup(scores: Mapping[str, Any], path: str) -> Any:
    value: Any = scores
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _format(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
