"""CheXpert-style labels: the 14 CheXpert observations of a report, as clinical metrics use them.

:func:`label_chexpert` reads a report (raw or cleaned text) with the rules of
:mod:`medvl.evaluate.labeler` (mentions, negation and uncertainty scopes, side and zone) and a
phrase table for the observations of the CheXpert labeler (Irvin et al., 2019):

* **Derived phrases.** Every phrase of :data:`~medvl.evaluate.labeler.FINDING_PHRASES` counts
  as the observation its kind maps to in :data:`medvl.findings.FINDING_KINDS` ("chexpert"), so
  the two labelers read "heart size is normal" or "left IJ catheter" alike. Kinds that map to
  no observation (calcified granulomas: CheXpert does not count calcified nodules as lesions)
  count as :data:`OTHER`.
* **CheXpert phrases** (:data:`CHEXPERT_PHRASES`) add what the finding vocabulary lacks
  (pneumonia, fracture, pleural thickening, enlarged cardiomediastinum, more devices such as
  sternotomy wires and prosthetic valves) and re-read a few phrases the CheXpert way: "airspace
  disease" is Lung Opacity, costophrenic blunting and pericardial effusion are not Pleural
  Effusion. They come first, so where two phrases match the same words, theirs wins.
* **Other abnormalities** (:data:`OTHER`): emphysema, hyperinflation, granulomas and
  calcifications, degenerative changes of the spine, scoliosis, hernias, a tortuous aorta, an
  elevated hemidiaphragm... are no observation of their own, but a report stating one has a
  finding, so it is not "No Finding" (CheXpert's no-finding phrase list does the same).
* **A second reading** (:data:`SECOND_READING`) for words that name a second observation:
  "cardiomediastinal silhouette is normal" denies Cardiomegaly and Enlarged Cardiomediastinum,
  a hydropneumothorax is a pneumothorax and an effusion.

Per observation the statuses aggregate as CheXpert aggregates them: positive beats uncertain
beats negative, over all sentences. **No Finding** is positive when no observation but Support
Devices, and no other abnormality, is positive or uncertain; it is never negative. An
observation the report does not mention has no label (blank).

Lung Lesion phrases are signs (:class:`~medvl.evaluate.labeler.Phrase`): "nodular densities
consistent with granulomatous disease" are granulomas, not lesions. Alternatives ("scarring or
atelectasis") are uncertain. Sides and zones are read around each mention as the labeler reads
them (never handed on from a neighbouring mention); an observation keeps the side its mentions
of the aggregate status agree on (left and right make bilateral), for the observations of
:data:`SIDED`, and their one zone, for those of :data:`ZONED`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from medvl.evaluate.labeler import (
    FINDING_PHRASES,
    NEGATIVE,
    POSITIVE,
    UNCERTAIN,
    Mention,
    Phrase,
    aggregate_status,
    find_mentions,
)
from medvl.findings import FINDING_KINDS

NO_FINDING = "No Finding"
ENLARGED_CARDIOMEDIASTINUM = "Enlarged Cardiomediastinum"
CARDIOMEGALY = "Cardiomegaly"
LUNG_LESION = "Lung Lesion"
LUNG_OPACITY = "Lung Opacity"
EDEMA = "Edema"
CONSOLIDATION = "Consolidation"
PNEUMONIA = "Pneumonia"
ATELECTASIS = "Atelectasis"
PNEUMOTHORAX = "Pneumothorax"
PLEURAL_EFFUSION = "Pleural Effusion"
PLEURAL_OTHER = "Pleural Other"
FRACTURE = "Fracture"
SUPPORT_DEVICES = "Support Devices"

OBSERVATIONS = (
    NO_FINDING,
    ENLARGED_CARDIOMEDIASTINUM,
    CARDIOMEGALY,
    LUNG_LESION,
    LUNG_OPACITY,
    EDEMA,
    CONSOLIDATION,
    PNEUMONIA,
    ATELECTASIS,
    PNEUMOTHORAX,
    PLEURAL_EFFUSION,
    PLEURAL_OTHER,
    FRACTURE,
    SUPPORT_DEVICES,
)
OTHER = "Other Abnormality"  # not an observation: it only keeps a report from being "No Finding"

SIDED = frozenset(
    {LUNG_LESION, LUNG_OPACITY, EDEMA, CONSOLIDATION, PNEUMONIA, ATELECTASIS, PNEUMOTHORAX, PLEURAL_EFFUSION,
     PLEURAL_OTHER, FRACTURE, SUPPORT_DEVICES}
)
ZONED = frozenset({LUNG_LESION, LUNG_OPACITY, EDEMA, CONSOLIDATION, PNEUMONIA, ATELECTASIS, PLEURAL_OTHER})

# --- phrases -------------------------------------------------------------------------------------
_MEDIASTINUM = r"(?:cardio ?)?mediastin\w*"
_LARGE = r"(?:widen\w*|enlarge\w*|prominen\w*)"
_GAP_NORMAL = r"(?:\W+(?!\w*(?:enlarge|widen|prominen))\w+){0,8}?\W+"  # up to eight words, none "enlarged"
_WORDS = r"(?: \w+){0,6}?"  # a few words in one clause: no commas between them

CHEXPERT_PHRASES: tuple[Phrase, ...] = (
    Phrase(
        CARDIOMEGALY, r"(?:heart|cardiac)(?: \w+){0,4}? (?:upper limits?|top|high) (?:of )?normal", status=UNCERTAIN
    ),
    Phrase(LUNG_OPACITY, r"air ?space (?:disease|opacit(?:y|ies)|process)"),
    Phrase(LUNG_OPACITY, r"interstitial (?:lung )?(?:changes?|opacit(?:y|ies)|disease|prominence|pattern)"),
    Phrase(LUNG_OPACITY, r"scar(?:s|ring|red)?|reticul\w*|ground ?glass|(?:peri)?bronchial (?:wall )?thickening"),
    Phrase(LUNG_LESION, r"cavit(?:y|ies|ary lesions?)|(?:lung|pulmonary|parenchymal) lesions?", sign=True),
    Phrase(LUNG_LESION, r"tumou?rs?|neoplasms?|carcinomas?|malignan(?:cy|cies)", sign=True),
    Phrase(PNEUMONIA, r"(?:broncho)?pneumonias?|pneumonitis|infectious (?:process|etiology)"),
    Phrase(PNEUMOTHORAX, r"hydropneumothora(?:x|ces)|deep sulcus sign"),
    Phrase(PLEURAL_OTHER, r"pleural (?:thickening|scar\w*|plaques?|calcifications?|fibrosis)"),
    Phrase(PLEURAL_OTHER, r"pleural thickening/scar\w*|pleural scar\w*/thickening"),
    Phrase(PLEURAL_OTHER, r"fibrothorax|apical (?:pleural )?capping"),
    Phrase(PLEURAL_OTHER, r"pleural ?parenchymal scar\w*|pleuroparenchymal scar\w*"),
    Phrase(FRACTURE, r"fractur(?:e|es|ed)(?: deformit(?:y|ies))?"),
    Phrase(SUPPORT_DEVICES, r"sternotomy(?: wires?| sutures?)?|(?:sternal|cerclage) wires?"),
    Phrase(SUPPORT_DEVICES, r"(?:prosthetic|artificial|replaced) (?:\w+ )?valves?"),
    Phrase(SUPPORT_DEVICES, r"valves? (?:replacements?|prosthes[ie]s|artifacts?)"),
    Phrase(SUPPORT_DEVICES, r"(?:\w+ )?hardware|(?:fixation|surgical) (?:plates?|screws?|rods?)|loop recorder"),
    Phrase(SUPPORT_DEVICES, r"port ?a ?cath|mediport|(?:chest|chest wall|power|infusion|venous) ports?"),
    Phrase(OTHER, r"pericardial effusions?"),
    Phrase(OTHER, r"blunt(?:ing|ed)?(?: of)?(?: the)?(?: \w+){0,4}? costophrenic(?: \w+)?"),
    Phrase(OTHER, r"costophrenic(?: \w+){0,3}? blunt(?:ing|ed)"),
    Phrase(OTHER, r"calcified(?: \w+){0,3}? nodul\w*|granulom\w*|calcifi\w*"),
    Phrase(OTHER, r"emphysema\w*|copd|chronic obstructive|obstructive (?:lung|airway|pulmonary) disease"),
    Phrase(OTHER, r"hyperinfla\w*|hyperexpan\w*|hyperaerat\w*|hyperlucen\w*|over ?inflat\w*|bull(?:a|ae|ous)|blebs?"),
    Phrase(OTHER, r"degenerat\w*|spondylo\w*|osteophyt\w*|arthrit\w*|arthropath\w*|\w*scolio\w*|kypho\w*"),
    Phrase(OTHER, r"osteopeni\w*|demineraliz\w*|deformit(?:y|ies)|pectus (?:excavatum|carinatum)|lytic|sclerotic"),
    Phrase(OTHER, r"hernia\w*|eventration|elevat(?:ed|ion)"),
    Phrase(OTHER, r"tortu\w*|ectas\w*|ectatic|aneurysm\w*|dilat(?:ed|ation|ion)"),
    Phrase(OTHER, r"atheroscl\w*|(?:lymph ?)?adenopathy|fibros\w*|fibrotic|thicken(?:ing|ed)|prominen\w*"),
    Phrase(OTHER, r"bronchiectasis|bronchitis|airways? disease|asthma|cephalization"),
    Phrase(OTHER, r"(?:pulmonary )?(?:arterial |venous )?hypertension|tubercul\w*|volume loss"),
    Phrase(OTHER, r"metasta\w*|contusion|hemorrhage|hematoma|pneumomediastinum|pneumoperitoneum"),
)

SECOND_READING: tuple[Phrase, ...] = (
    Phrase(ENLARGED_CARDIOMEDIASTINUM, rf"{_MEDIASTINUM}{_GAP_NORMAL}(?:normal|unremarkable)", status=NEGATIVE),
    Phrase(ENLARGED_CARDIOMEDIASTINUM, rf"normal (?:\w+ ){{0,4}}?{_MEDIASTINUM}", status=NEGATIVE),
    Phrase(ENLARGED_CARDIOMEDIASTINUM, rf"{_MEDIASTINUM}{_WORDS} {_LARGE}|{_LARGE} (?:of )?(?:the )?{_MEDIASTINUM}"),
    Phrase(ENLARGED_CARDIOMEDIASTINUM, r"hilar (?:enlargement|prominence|fullness)"),
    Phrase(ENLARGED_CARDIOMEDIASTINUM, r"(?:enlarged|prominent|full) hil(?:a|um|ar)"),
    Phrase(ENLARGED_CARDIOMEDIASTINUM, r"fullness (?:of|to|in) the (?:\w+ )?hil(?:um|a|ar)"),
    Phrase(PLEURAL_EFFUSION, r"hydropneumothora(?:x|ces)"),
)


def _derived(phrase: Phrase) -> Phrase:
    """A finding phrase as the CheXpert observation its kind counts as (:data:`OTHER` if none)."""
    observation = FINDING_KINDS[phrase.kind].chexpert or OTHER
    return Phrase(observation, phrase.pattern, status=phrase.status, sign=observation == LUNG_LESION)


PHRASE_TABLE: tuple[Phrase, ...] = CHEXPERT_PHRASES + tuple(_derived(phrase) for phrase in FINDING_PHRASES)


# --- labels --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChexpertLabels:
    """A report's labelled observations, in :data:`OBSERVATIONS` order, and where they are.

    ``status`` holds only the labelled observations (an absent key is a blank); ``sides`` and
    ``zones`` those with a stated side or zone; ``other`` the status of other abnormalities.
    """

    status: dict[str, str]
    sides: dict[str, str]
    zones: dict[str, str]
    other: str | None
    mentions: tuple[Mention, ...]

    def positive(self, uncertain_as: str = "negative") -> frozenset[str]:
        """The observations counted as present: positive ones, and uncertain ones if ``uncertain_as="positive"``."""
        counted = (POSITIVE, UNCERTAIN) if uncertain_as == POSITIVE else (POSITIVE,)
        return frozenset(observation for observation, status in self.status.items() if status in counted)

    def to_dict(self) -> dict[str, Any]:
        """``{"status", "sides", "zones"}``, JSON-ready."""
        return {"status": dict(self.status), "sides": dict(self.sides), "zones": dict(self.zones)}


def label_chexpert(text: str) -> ChexpertLabels:
    """The CheXpert observations of ``text`` (raw or cleaned report text)."""
    mentions = sorted(
        find_mentions(text, PHRASE_TABLE) + find_mentions(text, SECOND_READING),
        key=lambda m: (m.sentence_index, m.span),
    )
    aggregated = aggregate_status(mentions)
    other = aggregated.pop(OTHER, None)
    status = {observation: aggregated[observation] for observation in OBSERVATIONS if observation in aggregated}
    findings = {**status, OTHER: other}
    if not any(value in (POSITIVE, UNCERTAIN) for key, value in findings.items() if key != SUPPORT_DEVICES):
        status = {NO_FINDING: POSITIVE, **status}
    return ChexpertLabels(
        status=status,
        sides=_where(mentions, status, SIDED, "side"),
        zones=_where(mentions, status, ZONED, "zone"),
        other=other,
        mentions=tuple(mentions),
    )


def _where(
    mentions: Iterable[Mention], status: dict[str, str], observations: frozenset[str], field: str
) -> dict[str, str]:
    """Per observation, the side (or zone) its mentions of the aggregate status state, where they agree.

    Sides: left and right (or either with bilateral) make bilateral. Zones: one zone, else none.
    """
    places: dict[str, set[str]] = {}
    for mention in mentions:
        value = getattr(mention, field)
        if mention.kind in observations and value is not None and mention.status == status.get(mention.kind):
            places.setdefault(mention.kind, set()).add(value)
    found = {}
    for observation, values in places.items():
        if len(values) == 1:
            found[observation] = next(iter(values))
        elif field == "side":
            found[observation] = "bilateral"
    return {observation: found[observation] for observation in OBSERVATIONS if observation in found}
