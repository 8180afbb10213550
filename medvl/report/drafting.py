"""Drafting: studies in, `Draft`s out, in batches, going on past bad studies.

    from medvl import draft
    result = draft(["study1/", "scan.dcm"])          # the embedded default model
    result.drafts[0].to_text(), result.failures       # [(path, MedVLError), ...]

A :class:`Drafter` holds one loaded model for many calls (the CLI and the dashboard keep one).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from monai.transforms import Compose
from tqdm.auto import tqdm

from medvl.data.dataset import collate
from medvl.data.transforms import deterministic_transforms, per_epoch_transforms, study_error
from medvl.errors import ConfigError, MedVLError
from medvl.explain.attention import sentence_map, to_view_grids, token_attention
from medvl.explain.gradcam import gradcam_maps
from medvl.explain.occlusion import occlusion_maps
from medvl.io import Study, load_study
from medvl.model.decoding import DecodingConfig
from medvl.model.loading import load_model, model_version, resolve_model_dir
from medvl.report.draft import Draft, split_draft_sentences
from medvl.report.generation import GeneratedReport, generate_reports
from medvl.report.report_bank import ReportBank
from medvl.samples import resolve_study_path

ATTENTION = "attention"
# Map makers that work one study at a time (they need gradients or many forward passes):
# (model, sample, draft_ids, sentences) -> [sentence][view] maps on the original pixels.
SAMPLE_MAP_METHODS = {"gradcam": gradcam_maps, "occlusion": occlusion_maps}
MAP_METHODS = (ATTENTION, *SAMPLE_MAP_METHODS)
StudyInput = str | Path | Sequence[str | Path]  # one study: a path, or the paths of its views


@dataclass
class DraftRun:
    """What a batch of studies gave: drafts, and the studies that could not be drafted."""

    drafts: list[Draft] = field(default_factory=list)
    failures: list[tuple[StudyInput, MedVLError]] = field(default_factory=list)
    studies: list[Study] = field(default_factory=list)  # the loaded study of each draft, in order


class Drafter:
    """A loaded model, ready to draft reports; ``explain=True`` adds attention maps."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        decoding: DecodingConfig | Mapping[str, Any] | None = None,
        device: str | None = None,
    ) -> None:
        """Load the model in ``model_dir`` (a folder, or an embedded model's name; default
        ``cxr``). ``decoding`` replaces the model's
        decoding defaults (a :class:`DecodingConfig`) or changes some of them (a mapping)."""
        self.model_dir = resolve_model_dir(model_dir)
        self.model, self.tokenizer = load_model(self.model_dir)
        self.report_bank = ReportBank.load(self.model_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.version = model_version(self.model_dir)
        defaults = self.model.config.decoding_config
        self.decoding = decoding if isinstance(decoding, DecodingConfig) else defaults.updated(**(decoding or {}))
        config = self.model.config.transform_config
        self.preprocess = Compose([*deterministic_transforms(config), *per_epoch_transforms(config, train=False)])

    def prepare(self, study_input: StudyInput) -> dict[str, Any]:
        """The model-ready sample for one study: a path, or the paths of its views' files.

        ``sample["study"]`` keeps the loaded :class:`~medvl.io.Study` (original pixels, for
        overlays, and its UID hash). Raises :class:`MedVLError` for a bad study.
        """
        paths = [study_input] if isinstance(study_input, (str, Path)) else list(study_input)
        studies = [load_study(resolve_study_path(path)) for path in paths]
        try:
            sample = self.preprocess({"images": studies, "masks": None, "findings": []})
        except Exception as exc:  # MONAI wraps errors raised inside transforms
            error = study_error(exc)
            if error is None:
                raise
            raise error from exc
        views = tuple(view for study in studies for view in study.views)
        sample["study"] = Study(views=views, source=studies[0].source, study_uid_hash=studies[0].study_uid_hash)
        return sample

    def iter_drafts(
        self,
        inputs: Iterable[StudyInput],
        batch_size: int = 8,
        explain: bool = False,
        methods: Sequence[str] = (ATTENTION,),
    ) -> Iterator[tuple[StudyInput, Draft | MedVLError, Study | None]]:
        """Yield ``(input, draft, study)`` per study in order, or ``(input, error, None)`` for a bad one.

        With ``explain``, each draft gets ``maps[method]`` for each of ``methods`` (:data:`MAP_METHODS`).
        """
        inputs = list(inputs)
        for start in range(0, len(inputs), batch_size):
            prepared: list[tuple[StudyInput, dict[str, Any] | MedVLError]] = []
            for study_input in inputs[start : start + batch_size]:
                try:
                    prepared.append((study_input, self.prepare(study_input)))
                except MedVLError as error:
                    prepared.append((study_input, error))
            samples = [sample for _, sample in prepared if isinstance(sample, dict)]
            drafts = iter(self.draft_samples(samples, explain=explain, methods=methods) if samples else [])
            for study_input, sample in prepared:
                if isinstance(sample, MedVLError):
                    yield study_input, sample, None
                else:
                    yield study_input, next(drafts), sample["study"]

    def draft(
        self,
        inputs: Iterable[StudyInput],
        batch_size: int = 8,
        explain: bool = False,
        progress: bool = False,
        methods: Sequence[str] = (ATTENTION,),
    ) -> DraftRun:
        """Draft every study in ``inputs``; a bad study is reported in ``failures``, the rest go on."""
        inputs = list(inputs)
        run = DraftRun()
        results = self.iter_drafts(inputs, batch_size=batch_size, explain=explain, methods=methods)
        for study_input, result, study in tqdm(
            results, total=len(inputs), desc="draft", unit="study", disable=not progress
        ):
            if isinstance(result, MedVLError):
                run.failures.append((study_input, result))
            else:
                run.drafts.append(result)
                run.studies.append(study)
        return run

    def draft_samples(
        self, samples: Sequence[dict[str, Any]], explain: bool = False, methods: Sequence[str] = (ATTENTION,)
    ) -> list[Draft]:
        """Draft already prepared samples (see :meth:`prepare`) as one batch."""
        unknown = sorted(set(methods) - set(MAP_METHODS))
        if unknown:
            raise ConfigError(f"unknown map method(s) {', '.join(unknown)}; known: {', '.join(MAP_METHODS)}")
        batch = collate(samples)
        images, view_mask = batch["image"].to(self.device), batch["view_mask"].to(self.device)
        with torch.no_grad():
            reports = generate_reports(self.model, images, view_mask, self.decoding, self.tokenizer, self.report_bank)
            drafts = [self._draft(sample, report) for sample, report in zip(samples, reports)]
            generated = [report.ids for report in reports]
            if explain and ATTENTION in methods:
                self._add_attention_maps(drafts, batch, images, view_mask, generated)
        for method in (method for method in methods if explain and method in SAMPLE_MAP_METHODS):
            for sample, draft, ids in zip(samples, drafts, generated):
                draft.maps[method] = SAMPLE_MAP_METHODS[method](self.model, sample, ids, draft.sentences)
        return drafts

    def _draft(self, sample: dict[str, Any], report: GeneratedReport) -> Draft:
        ids = report.ids
        tokens = self.tokenizer.convert_ids_to_tokens(ids)

        def cleaned(start: int, end: int) -> str:
            return self.tokenizer.decode(ids[start:end], skip_special_tokens=True)

        sentences = [
            replace(sentence, origin=report.origin(cleaned(sentence.token_start, sentence.token_end)))
            for sentence in split_draft_sentences(tokens, cleaned)
        ]
        study_uid_hash = sample["study"].study_uid_hash
        return Draft(
            study=study_uid_hash or sample["study"].source.name,
            study_uid_hash=study_uid_hash,
            sentences=sentences,
            tokens=tokens,
            model_name=self.model.config.model_name,
            model_version=self.version,
            decoding=self.decoding.to_dict(),
            views=[info for info in sample["view_info"] if info is not None],
        )

    def _add_attention_maps(
        self,
        drafts: list[Draft],
        batch: dict[str, Any],
        images: torch.Tensor,
        view_mask: torch.Tensor,
        generated: list[list[int]],
    ) -> None:
        maps = token_attention(self.model, images, view_mask, generated)
        image_size = self.model.config.transform_config.image_size
        for row, draft in enumerate(drafts):
            draft.maps[ATTENTION] = [
                [
                    grid.numpy()
                    for grid in to_view_grids(
                        sentence_map(maps[row], draft.tokens, sentence.token_start, sentence.token_end),
                        image_size,
                        batch["geometry"][row],
                        batch["original_size"][row],
                    )
                ]
                for sentence in draft.sentences
            ]


def draft(
    studies: StudyInput | Iterable[StudyInput],
    model: str | Path | None = None,
    *,
    batch_size: int = 8,
    decoding: DecodingConfig | Mapping[str, Any] | None = None,
    explain: bool = False,
    progress: bool = False,
    methods: Sequence[str] = (ATTENTION,),
) -> DraftRun:
    """Draft reports for one or many studies with the model in ``model`` (default: embedded).

    Each study is a path (file or folder) or a list of the paths of its views' files. With
    ``explain``, each draft gets the maps of ``methods`` (``attention``, ``gradcam``, ``occlusion``).
    """
    if isinstance(studies, (str, Path)):
        studies = [studies]
    drafter = Drafter(model, decoding=decoding)
    return drafter.draft(studies, batch_size=batch_size, explain=explain, progress=progress, methods=methods)
