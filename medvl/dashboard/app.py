"""The medvl dashboard: open a study, read its draft, and see where each sentence came from.

Started by ``medvl dashboard`` (:func:`medvl.dashboard.run_dashboard`), or in a checkout by
``streamlit run dashboard/app.py``. Presentation only: studies are read, drafted, explained,
scored and exported by medvl.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from html import escape
from pathlib import Path

import numpy as np
import streamlit as st

from medvl import DRAFT_NOTICE
from medvl.dashboard import MODEL_VARIABLE
from medvl.dashboard.pictures import default_slice, slice_count, view_picture, window_choices, window_for
from medvl.dashboard.review import export_json, export_text, finding_names, score_draft, sr_bytes
from medvl.dashboard.studies import StudySource, embedded_model_for, readable_error, sample_source, upload_source
from medvl.errors import MedVLError
from medvl.io.study import View
from medvl.report.draft import Draft
from medvl.report.drafting import Drafter, DraftRun
from medvl.samples import sample_names

METHOD_NAMES = {"attention": "Attention", "gradcam": "Grad-CAM"}
NO_SENTENCE = -1  # the sentence choice that shows the views without a map
DOWNLOAD = {"on_click": "ignore", "icon": ":material/download:"}  # downloads need no rerun


@st.cache_resource(show_spinner="Loading the model...")
def load_drafter(model: str) -> Drafter:
    """One loaded model per model name or folder, shared by every session."""
    return Drafter(model)


@st.cache_data(show_spinner=False)
def model_for_study(path: str) -> str:
    """The embedded model that fits the study at ``path`` (its dimension decides)."""
    return embedded_model_for(path)


def main() -> None:
    """Draw the page."""
    st.set_page_config(page_title="medvl dashboard", layout="wide")
    st.title("medvl: report drafts and their evidence")
    st.warning(f"**{DRAFT_NOTICE}**: the reports here are machine-written drafts.", icon="⚠️")
    try:
        source = choose_study()
        model = choose_model()
        if source is None:
            st.info("Choose a sample or upload a study in the sidebar.")
            return
        model = model or model_for_study(str(source.path))
        run = drafted(source.key, model, source.path)
    except MedVLError as error:
        st.error(readable_error(error, workspace()))
        return
    show_draft(source, run, load_drafter(model), draft_key=short_hash(source.key, model))


def workspace() -> Path:
    """This session's folder for uploads (removed when the session ends)."""
    if "workspace" not in st.session_state:
        st.session_state.workspace = tempfile.TemporaryDirectory(prefix="medvl-dashboard-")
    return Path(st.session_state.workspace.name)


def choose_study() -> StudySource | None:
    """The sidebar's study: a bundled sample or uploaded files (``None`` until one is chosen)."""
    st.sidebar.header("Study")
    origin = st.sidebar.radio("Open", ("Sample", "Upload"), horizontal=True, key="origin")
    if origin == "Sample":
        name = st.sidebar.selectbox("Sample", sample_names(), index=None, placeholder="Choose a sample", key="sample")
        return None if name is None else sample_source(name)
    limit = st.get_option("server.maxUploadSize")
    files = st.sidebar.file_uploader(
        "DICOM files or a zipped series, NIfTI, PNG or JPEG",
        accept_multiple_files=True,
        key="upload",
        help=f"Several files are read as one study (its views, or the slices of a series). Up to {limit} MB a file.",
    )
    if not files:
        return None
    return upload_source([(file.name, file.getvalue()) for file in files], workspace())


def choose_model() -> str | None:
    """The model folder or embedded model's name typed in the sidebar; ``None``: one per study."""
    text = st.sidebar.text_input(
        "Model",
        value=os.environ.get(MODEL_VARIABLE, ""),
        placeholder="auto: cxr for radiographs, ct for volumes",
        help="A model folder, or an embedded model's name (cxr, ct). Empty: the embedded model for the study.",
        key="model",
    )
    return text.strip() or None


@st.cache_resource(max_entries=16, show_spinner="Drafting the report...")
def drafted(study_key: str, model: str, _path: Path) -> DraftRun:
    """The draft, with its maps, of the study ``study_key`` (read from ``_path``) by ``model``.

    Drafted once for every session: a study's key names its contents (a sample's name, or the
    digest of the uploaded files).
    """
    with drafting_lock():
        run = load_drafter(model).draft([_path], explain=True)
    if run.failures:
        raise run.failures[0][1]
    return run


@st.cache_resource
def drafting_lock() -> threading.Lock:
    """One draft at a time: the models are shared between sessions, and so are the CPUs."""
    return threading.Lock()


def short_hash(*parts: str) -> str:
    """A short stable name for widget keys (they become CSS classes in the page)."""
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:10]


def show_draft(source: StudySource, run: DraftRun, drafter: Drafter, draft_key: str) -> None:
    """The views with the chosen sentence's map, the draft to edit and export, and the scores."""
    draft, study = run.drafts[0], run.studies[0]
    views = study.ordered_views()[: len(draft.views)]  # the views the model read, in its order
    pictures, text = st.columns([3, 2], gap="large")
    with text:
        st.subheader(f"Draft: {source.label}")
        sentence = choose_sentence(draft, draft_key)
        export_draft(draft, source, draft_key)
    with pictures:
        show_views(views, draft, sentence, draft_key)
    show_reference(source, draft, drafter, draft_key)


ORIGINS_NOTE = (
    "Sentences marked *report bank* come from the consensus of the training reports with the findings "
    "the model's finding head sees; *finding sentence* marks a sentence put in because the head sees "
    "that finding and the decoder did not state it. Their maps show where the model looked while reading them."
)


def choose_sentence(draft: Draft, draft_key: str) -> int:
    """The sentence whose map is drawn (:data:`NO_SENTENCE` for none)."""
    if not draft.sentences:
        st.info("The model wrote no sentence for this study.")
        return NO_SENTENCE

    def label(index: int) -> str:
        if index == NO_SENTENCE:
            return "None: show the images alone"
        sentence = draft.sentences[index]
        written_by = "" if sentence.origin == "decoder" else f" _({sentence.origin})_"
        return f"**{sentence.section.title()}**: {sentence.text}{written_by}"

    chosen = st.radio(
        "Choose a sentence to see where it came from",
        [NO_SENTENCE, *range(len(draft.sentences))],
        format_func=label,
        key=f"sentence-{draft_key}",
    )
    if any(sentence.origin != "decoder" for sentence in draft.sentences):
        st.caption(ORIGINS_NOTE)
    return chosen


def show_views(views: list[View], draft: Draft, sentence: int, draft_key: str) -> None:
    """The views side by side, the chosen sentence's map over each, and the display controls."""
    method_column, opacity_column, window_column = st.columns(3)
    method = method_column.radio("Map", list(draft.maps), format_func=method_name, horizontal=True, key="method")
    alpha = opacity_column.slider("Opacity", 0.0, 1.0, 0.6, 0.05, key="opacity")
    window = window_column.selectbox("Window", window_choices(views), key=f"window-{draft_key}")
    explained = sentence != NO_SENTENCE and method is not None
    heats = draft.maps[method][sentence] if explained else [None] * len(views)
    for number, (column, view, heat) in enumerate(zip(st.columns(len(views)), views, heats)):
        with column:
            slider_key = f"slice-{draft_key}-{number}-{sentence}-{method}"  # a new map starts at its peak
            show_view(view, heat, window_for(view, window), alpha, method_name(method), slider_key)
    if explained:
        chosen = draft.sentences[sentence]
        st.html(
            f'<p data-medvl-overlay="{escape(method)}" data-sentence="{sentence + 1}">'
            f"{escape(method_name(method))} map of <q>{escape(chosen.text)}</q>: "
            "the brighter the colour, the more the sentence drew on that region.</p>"
        )


def method_name(method: str) -> str:
    """``"Attention"``, ``"Grad-CAM"``: how a map method is shown."""
    return METHOD_NAMES.get(method, method)


def show_view(
    view: View, heat: np.ndarray | None, window: tuple[float, float] | None, alpha: float, method: str, slider_key: str
) -> None:
    """One view (a volume with its slice slider), with ``heat`` over it when given."""
    slice_index = None
    if view.info.spatial_dims == 3:
        slice_index = default_slice(view, heat)
        if slice_count(view) > 1:
            slice_index = st.slider("Slice", 1, slice_count(view), slice_index + 1, key=slider_key) - 1
    picture = view_picture(view, heat, window=window, alpha=alpha, slice_index=slice_index)
    alt = f"{view_name(view)} view" + ("" if heat is None else f" with the {method} map overlay")
    st.image(picture, caption=view_caption(view, slice_index), width="stretch", alt=alt)


def view_name(view: View) -> str:
    """``"frontal"``, ``"lateral"``, or ``"volume"`` / ``"image"`` for a view of no radiograph role."""
    if view.info.role != "other":
        return view.info.role
    return "volume" if view.info.spatial_dims == 3 else "image"


def view_caption(view: View, slice_index: int | None) -> str:
    """``"frontal · DX · 2048x2500"``, or ``"volume · CT · 512x512x80 · slice 40/80"``."""
    kind = view.info.modality or view.info.source_format
    size = "x".join(str(n) for n in view.info.size)
    where = "" if slice_index is None else f" · slice {slice_index + 1}/{slice_count(view)}"
    return f"{view_name(view)} · {kind} · {size}{where}"


def export_draft(draft: Draft, source: StudySource, draft_key: str) -> None:
    """The editable draft, and its downloads: text, JSON and, for DICOM studies, a DICOM SR."""
    edited = st.text_area("Edit the draft", draft.to_text(), height=260, key=f"edit-{draft_key}")
    st.caption(f"Written by {draft.model_name} {draft.model_version}.")
    name = draft.study
    downloads = st.container(horizontal=True)
    downloads.download_button("Text", export_text(edited), f"{name}.txt", "text/plain", **DOWNLOAD)
    downloads.download_button("JSON", export_json(draft, edited), f"{name}.json", "application/json", **DOWNLOAD)
    if draft.study_uid_hash is not None:  # a DICOM study, which an SR can join
        downloads.download_button(
            "DICOM SR",
            lambda: sr_bytes(draft, source.path),
            f"{name}.sr.dcm",
            "application/dicom",
            help="The machine draft (not your edits), marked preliminary and unverified.",
            **DOWNLOAD,
        )


def show_reference(source: StudySource, draft: Draft, drafter: Drafter, draft_key: str) -> None:
    """The reference report (the sample's, or one pasted) and the draft's scores against it."""
    st.subheader("Reference report")
    if source.reference is not None:
        st.markdown(source.reference)
        reference = source.reference
    else:
        reference = st.text_area("Paste the reference report to score the draft", key=f"reference-{draft_key}")
    if not reference.strip():
        return
    scores = score_draft(drafter, draft, reference, truth=source.findings)
    findings, nlg = scores["findings"], scores["nlg"]
    columns = st.columns(4)
    columns[0].metric("Findings", "match" if findings["correct"] else "differ")
    columns[1].metric("BLEU-1", f"{nlg['BLEU_1']:.3f}")
    columns[2].metric("BLEU-4", f"{nlg['BLEU_4']:.3f}")
    columns[3].metric("ROUGE-L", f"{nlg['ROUGE_L']:.3f}")
    truth = "True findings" if source.findings is not None else "Findings in the reference"
    st.caption(f"Draft names: {finding_names(findings['predicted'])}. {truth}: {finding_names(findings['true'])}.")


if __name__ == "__main__":
    main()
