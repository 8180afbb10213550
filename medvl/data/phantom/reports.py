"""Template radiology reports for phantom studies, in the style of real chest X-ray reports.

Each present finding gets one sentence naming it with its side, zone and size; normal
structures and absent findings are stated the way radiologists state them ("The heart size is
normal.", "No pleural effusion or pneumothorax."). Every normal or negative statement is listed
with the kinds it denies (:class:`Statement`, :data:`ABSENT_ITEMS`) and is only said when none
of them is present: that is the whole rule that keeps a report from denying its own findings.
Phrasing is drawn from several templates with a seeded generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medvl.errors import ConfigError
from medvl.findings import FINDING_KINDS, Finding

PARENCHYMAL = frozenset({"consolidation", "opacity", "nodule", "mass", "atelectasis", "edema", "calcified_granuloma"})

# --- where ---------------------------------------------------------------------------------------
_ZONE_PHRASES = {
    ("right", "upper"): ("right upper lobe", "right upper zone", "right upper lung"),
    ("right", "middle"): ("right middle lobe", "right mid zone", "right midlung"),
    ("right", "lower"): ("right lower lobe", "right lower zone", "right lung base"),
    ("left", "upper"): ("left upper lobe", "left upper zone", "left upper lung"),
    ("left", "middle"): ("left midlung", "left mid zone", "left mid lung zone"),
    ("left", "lower"): ("left lower lobe", "left lower zone", "left lung base"),
}

# --- present findings: "{side}", "{loc}" (side + zone) and "{size}" are filled in --------------
_PRESENT = {
    "cardiomegaly": (
        "The heart is enlarged.",
        "Cardiomegaly is present.",
        "There is enlargement of the cardiac silhouette.",
        "The cardiac silhouette is enlarged, consistent with cardiomegaly.",
    ),
    "pleural_effusion": (
        "There is a {side} pleural effusion.",
        "A {side} pleural effusion is present.",
        "Blunting of the {side} costophrenic angle is consistent with a {side} pleural effusion.",
        "{Side} pleural effusion with a meniscus at the lung base.",
    ),
    "pleural_effusion/bilateral": (
        "There are bilateral pleural effusions.",
        "Bilateral pleural effusions are present.",
        "Blunting of both costophrenic angles is consistent with bilateral pleural effusions.",
    ),
    "pneumothorax": (
        "There is a {side} pneumothorax.",
        "A {side} apical pneumothorax is present.",
        "A {side} pneumothorax is seen with a visible pleural line.",
        "{Side} pneumothorax with a visible visceral pleural line at the apex.",
    ),
    "consolidation": (
        "There is focal consolidation in the {loc}.",
        "Airspace consolidation is present in the {loc}.",
        "Consolidation is seen in the {loc}.",
        "There is dense airspace consolidation within the {loc}.",
    ),
    "opacity": (
        "There is a hazy opacity in the {loc}.",
        "Patchy opacity is noted in the {loc}.",
        "There is increased opacity within the {loc}.",
        "An ill-defined opacity projects over the {loc}.",
    ),
    "nodule": (
        "There is a {size} nodule in the {loc}.",
        "A {size} pulmonary nodule is present in the {loc}.",
        "A nodule measuring {size} is seen in the {loc}.",
        "A well-circumscribed {size} nodule projects over the {loc}.",
    ),
    "mass": (
        "There is a {size} mass in the {loc}.",
        "A {size} lobulated mass is seen in the {loc}.",
        "A mass measuring {size} is present in the {loc}.",
    ),
    "atelectasis": (
        "There is {side} basilar atelectasis.",
        "Linear opacity at the {side} lung base is consistent with subsegmental atelectasis.",
        "Streaky {side} basilar atelectasis is noted.",
        "Plate-like atelectasis is present at the {side} lung base.",
    ),
    "atelectasis/bilateral": (
        "There is bilateral basilar atelectasis.",
        "Linear opacities at both lung bases are consistent with bilateral subsegmental atelectasis.",
        "Mild bibasilar atelectasis is present bilaterally.",
    ),
    "edema": (
        "There is bilateral perihilar haziness with interstitial markings, consistent with pulmonary edema.",
        "Bilateral perihilar and interstitial opacities are compatible with pulmonary edema.",
        "Findings are consistent with pulmonary edema, with bilateral perihilar haze and Kerley B lines.",
    ),
    "calcified_granuloma": (
        "There is a calcified granuloma in the {loc}.",
        "A {size} calcified granuloma is noted in the {loc}.",
        "A small calcified granuloma projects over the {loc}.",
    ),
    "support_device/central_line": (
        "A {side} internal jugular central venous catheter terminates in the distal superior vena cava.",
        "{Side}-sided central venous catheter with its tip at the cavoatrial junction.",
        "There is a {side} central line with the tip in the lower superior vena cava.",
    ),
    "support_device/endotracheal_tube": (
        "An endotracheal tube is in place with its tip above the carina.",
        "The endotracheal tube terminates in the mid trachea, above the carina.",
        "Endotracheal tube in satisfactory position.",
    ),
    "support_device/pacemaker": (
        "A left chest wall pacemaker is present with leads in the right atrium and right ventricle.",
        "Dual-chamber pacemaker in place, leads terminating in the right heart.",
        "There is a cardiac pacemaker with its generator over the left chest.",
    ),
    "degenerative_spine": (
        "There are degenerative changes of the thoracic spine.",
        "Mild degenerative changes of the thoracic spine.",
        "Thoracic spondylosis with small anterior osteophytes.",
    ),
}

_IMPRESSION = {
    "cardiomegaly": "Cardiomegaly.",
    "pleural_effusion": "{Side} pleural effusion.",
    "pleural_effusion/bilateral": "Bilateral pleural effusions.",
    "pneumothorax": "{Side} pneumothorax.",
    "consolidation": "{Loc} consolidation.",
    "opacity": "{Loc} opacity.",
    "nodule": "{Size} {loc} nodule.",
    "mass": "{Size} {loc} mass.",
    "atelectasis": "{Side} basilar atelectasis.",
    "atelectasis/bilateral": "Bilateral basilar atelectasis.",
    "edema": "Pulmonary edema.",
    "calcified_granuloma": "Calcified granuloma in the {loc}.",
    "support_device/central_line": "{Side} central venous catheter in place.",
    "support_device/endotracheal_tube": "Endotracheal tube in place.",
    "support_device/pacemaker": "Pacemaker in place.",
    "degenerative_spine": "Degenerative changes of the thoracic spine.",
}


# --- normal and absent statements, each with the kinds it denies --------------------------------
@dataclass(frozen=True)
class Statement:
    """Interchangeable phrasings of one normal or negative statement, and what it denies."""

    phrases: tuple[str, ...]
    denies: frozenset[str]

    def allowed(self, present: frozenset[str]) -> bool:
        """True when no finding this statement denies is present."""
        return not self.denies & present


HEART_NORMAL = Statement(
    (
        "The heart size is normal.",
        "Heart size is within normal limits.",
        "The heart is normal in size.",
        "The cardiomediastinal silhouette is within normal limits.",
        "Normal heart size and mediastinal contours.",
    ),
    frozenset({"cardiomegaly", "enlarged_cardiomediastinum"}),
)
LUNGS_CLEAR = Statement(
    (
        "The lungs are clear.",
        "Lungs are clear bilaterally.",
        "The lungs are clear without focal airspace disease.",
        "Both lungs are clear.",
    ),
    PARENCHYMAL,
)
EXTRAS = (
    Statement(("The osseous structures are intact.", "No acute bony abnormality."), frozenset({"fracture"})),
    Statement(("Visualized osseous structures are unremarkable.",), frozenset({"fracture", "degenerative_spine"})),
)
# Absent findings are listed in one "No ..." sentence; each item denies one kind.
ABSENT_ITEMS = (
    ("focal consolidation", "consolidation"),
    ("pleural effusion", "pleural_effusion"),
    ("pneumothorax", "pneumothorax"),
)
_ABSENT_FRAMES = ("No {items}.", "There is no {items}.", "No evidence of {items}.", "Negative for {items}.")
_NORMAL_IMPRESSIONS = (
    "No acute cardiopulmonary abnormality.",
    "No acute cardiopulmonary process.",
    "Normal chest.",
    "No active disease.",
)


@dataclass(frozen=True)
class PhantomReport:
    """A report with its structured findings; ``text`` joins the sections."""

    findings: tuple[Finding, ...]
    sections: dict[str, str]  # "findings", "impression"

    @property
    def text(self) -> str:
        """``"FINDINGS: ... IMPRESSION: ..."``."""
        return f"FINDINGS: {self.sections['findings']} IMPRESSION: {self.sections['impression']}"


def _template_key(finding: Finding) -> str:
    if finding.device is not None:
        return f"{finding.kind}/{finding.device}"
    if finding.side == "bilateral" and f"{finding.kind}/bilateral" in _PRESENT:
        return f"{finding.kind}/bilateral"
    return finding.kind


def _size_phrase(size_mm: float, rng: np.random.Generator) -> str:
    if size_mm >= 10.0 and rng.random() < 0.5:
        return f"{size_mm / 10.0:g} cm"
    return f"{size_mm:g} mm"


def _wording(finding: Finding, rng: np.random.Generator) -> dict[str, str]:
    """The words for one finding's side, location and size, chosen once per report so the
    findings and the impression describe it alike (``Side``, ``Loc``, ``Size``: capitalised)."""
    values = {
        "side": finding.side or "",
        "loc": _choose(_ZONE_PHRASES[(finding.side, finding.zone)], rng) if finding.zone else "",
        "size": _size_phrase(finding.size_mm, rng) if finding.size_mm is not None else "",
    }
    values.update({key.capitalize(): value[:1].upper() + value[1:] for key, value in values.items()})
    return values


def _choose(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _join_items(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _in_registry_order(findings: Sequence[Finding]) -> list[Finding]:
    order = list(FINDING_KINDS)
    return sorted(findings, key=lambda f: order.index(f.kind))


def _findings_section(findings: list[Finding], words: list[dict[str, str]], rng: np.random.Generator) -> str:
    present = frozenset(f.kind for f in findings)
    sentences = []
    if HEART_NORMAL.allowed(present):
        sentences.append(_choose(HEART_NORMAL.phrases, rng))
    sentences += [_choose(_PRESENT[_template_key(f)], rng).format(**w) for f, w in zip(findings, words)]
    if LUNGS_CLEAR.allowed(present):
        sentences.append(_choose(LUNGS_CLEAR.phrases, rng))
    absent = [item for item, kind in ABSENT_ITEMS if kind not in present]
    if absent:
        sentences.append(_choose(_ABSENT_FRAMES, rng).format(items=_join_items(absent)))
    extras = [statement for statement in EXTRAS if statement.allowed(present)]
    if extras and len(sentences) < 6 and rng.random() < 0.5:
        sentences.append(_choose(_choose(extras, rng).phrases, rng))
    return " ".join(sentences)


def _impression(findings: list[Finding], words: list[dict[str, str]], rng: np.random.Generator) -> str:
    if not findings:
        return _choose(_NORMAL_IMPRESSIONS, rng)
    return " ".join(_IMPRESSION[_template_key(f)].format(**w) for f, w in zip(findings, words))


def make_report(findings: Sequence[Finding], seed: int | np.random.Generator = 0) -> PhantomReport:
    """The report of a study with ``findings`` (empty: a normal study), phrased by ``seed``."""
    findings = tuple(findings)
    for finding in findings:
        if _template_key(finding) not in _PRESENT:
            raise ConfigError(f"phantom reports have no template for finding kind '{finding.kind}' yet")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ordered = _in_registry_order(findings)
    words = [_wording(f, rng) for f in ordered]
    sections = {"findings": _findings_section(ordered, words, rng), "impression": _impression(ordered, words, rng)}
    return PhantomReport(findings, sections)
