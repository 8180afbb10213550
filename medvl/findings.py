"""The finding vocabulary: what a chest study can show, in one place.

The phantom generator draws these findings, the report templates describe them, the evaluation
and the clinical labeler score them. Everything they need to agree on lives here: the kinds,
the sides and zones a kind takes, its size range, its devices, whether it has a compact mask
for grounding, and the CheXpert observation it counts as.

Sides are the PATIENT's sides. Zones split each lung by height into thirds.

Adding a kind (fracture, enlarged cardiomediastinum, pleural thickening, ...) is one entry in
:data:`FINDING_KINDS`; the phantom generator and the report templates then say clearly that
they do not handle it yet until they are taught to.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any

from medvl.errors import ConfigError

SIDES = ("left", "right", "bilateral")
ZONES = ("upper", "middle", "lower")
FINDING_FIELDS = ("kind", "side", "zone", "size_mm", "device")


@dataclass(frozen=True)
class DeviceKind:
    """A support device: its name, how reports call it, and the sides it is placed on."""

    name: str
    label: str
    sides: tuple[str | None, ...] = (None,)


@dataclass(frozen=True)
class FindingKind:
    """What one kind of finding allows, and how it maps to other vocabularies.

    ``sides`` lists the allowed values of ``Finding.side`` (``None`` means "no side"); an empty
    ``zones`` means the kind is not given a zone. ``localised`` kinds have a compact mask that
    attention can be scored against; diffuse ones (edema) and thin ones (devices) do not.
    ``chexpert`` is the CheXpert observation the kind counts as, or ``None`` where CheXpert
    does not count it at all. ``sampled`` kinds are the ones ``medvl synth`` draws at random into
    phantom sets; the others are drawn only where a report states them (the IU-phantom).
    """

    name: str
    label: str
    chexpert: str | None
    sides: tuple[str | None, ...] = (None,)
    zones: tuple[str, ...] = ()
    size_mm: tuple[float, float] | None = None
    devices: tuple[DeviceKind, ...] = ()
    localised: bool = True
    sampled: bool = True
    note: str = ""

    @property
    def zoned(self) -> bool:
        """Whether a finding of this kind names a lung zone."""
        return bool(self.zones)

    def device(self, name: str) -> DeviceKind:
        """The device called ``name``; a :class:`ConfigError` if this kind has no such device."""
        for device in self.devices:
            if device.name == name:
                return device
        known = ", ".join(d.name for d in self.devices) or "none"
        raise ConfigError(f"finding kind '{self.name}' has no device '{name}' (devices: {known})")

    def variants(self) -> tuple[tuple[str | None, str | None, str | None], ...]:
        """Every allowed ``(side, zone, device)`` combination, in a fixed order."""
        if self.devices:
            return tuple((side, None, d.name) for d in self.devices for side in d.sides)
        zones: tuple[str | None, ...] = self.zones or (None,)
        return tuple((side, zone, None) for side, zone in product(self.sides, zones))


SUPPORT_DEVICES = (
    DeviceKind("central_line", "central venous catheter", sides=("left", "right")),
    DeviceKind("endotracheal_tube", "endotracheal tube"),
    DeviceKind("pacemaker", "pacemaker"),
)

_LEFT_RIGHT = ("left", "right")

FINDING_KINDS: dict[str, FindingKind] = {
    kind.name: kind
    for kind in (
        FindingKind("cardiomegaly", "cardiomegaly", "Cardiomegaly", note="mask: the heart"),
        FindingKind("pleural_effusion", "pleural effusion", "Pleural Effusion", sides=SIDES),
        FindingKind("pneumothorax", "pneumothorax", "Pneumothorax", sides=_LEFT_RIGHT),
        FindingKind("consolidation", "consolidation", "Consolidation", sides=_LEFT_RIGHT, zones=ZONES),
        FindingKind("opacity", "opacity", "Lung Opacity", sides=_LEFT_RIGHT, zones=ZONES),
        FindingKind("nodule", "nodule", "Lung Lesion", sides=_LEFT_RIGHT, zones=ZONES, size_mm=(6.0, 30.0)),
        FindingKind("mass", "mass", "Lung Lesion", sides=_LEFT_RIGHT, zones=ZONES, size_mm=(31.0, 70.0)),
        FindingKind("atelectasis", "atelectasis", "Atelectasis", sides=SIDES, note="basal (plate-like), no zone"),
        FindingKind("edema", "pulmonary edema", "Edema", sides=("bilateral",), localised=False),
        FindingKind(
            "calcified_granuloma",
            "calcified granuloma",
            None,
            sides=_LEFT_RIGHT,
            zones=ZONES,
            size_mm=(3.0, 8.0),
            note=(
                "CheXpert's labeler explicitly does not count calcified nodules as Lung Lesion "
                "(its unmention list has 'calcified nodul'), so this kind maps to no observation."
            ),
        ),
        FindingKind(
            "support_device",
            "support device",
            "Support Devices",
            sides=(None, "left", "right"),
            devices=SUPPORT_DEVICES,
            localised=False,
        ),
        FindingKind(
            "degenerative_spine",
            "degenerative changes of the thoracic spine",
            None,
            sampled=False,
            note=(
                "osteophytes at the disc levels of the mid and lower thoracic spine. Not one of CheXpert's 14 "
                "observations; it keeps a report from 'No Finding'. Drawn only where a report states it."
            ),
        ),
    )
}
SAMPLED_KINDS: tuple[str, ...] = tuple(name for name, kind in FINDING_KINDS.items() if kind.sampled)


def finding_kind(name: str) -> FindingKind:
    """The registry entry for ``name``; a :class:`ConfigError` listing the known kinds otherwise."""
    try:
        return FINDING_KINDS[name]
    except KeyError:
        known = ", ".join(FINDING_KINDS)
        raise ConfigError(f"unknown finding kind '{name}' (known kinds: {known})") from None


@dataclass(frozen=True)
class Finding:
    """One finding: a kind, and the side, zone, size and device that kind requires.

    Every field the kind uses must be given and every other one must be ``None``, so two
    equal findings always mean the same picture and the same sentence.
    """

    kind: str
    side: str | None = None
    zone: str | None = None
    size_mm: float | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        spec = finding_kind(self.kind)
        if self.size_mm is not None:
            if isinstance(self.size_mm, bool) or not isinstance(self.size_mm, (int, float)):
                raise ConfigError(f"finding '{self.kind}' needs a numeric size_mm, got {self.size_mm!r}")
            object.__setattr__(self, "size_mm", float(self.size_mm))
        self._check_device(spec)
        self._check_side(spec)
        self._check_zone(spec)
        self._check_size(spec)

    @property
    def spec(self) -> FindingKind:
        """This finding's :class:`FindingKind`."""
        return FINDING_KINDS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """``{"kind", "side", "zone", "size_mm", "device"}``, JSON-ready."""
        return {name: getattr(self, name) for name in FINDING_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        if not isinstance(data, dict) or "kind" not in data:
            raise ConfigError(f"a finding must be a mapping with a 'kind', got {data!r}")
        unknown = sorted(set(data) - set(FINDING_FIELDS))
        if unknown:
            raise ConfigError(f"unknown finding field(s) {', '.join(unknown)} in {data!r}")
        return cls(**data)

    def _check_device(self, spec: FindingKind) -> None:
        if not spec.devices:
            if self.device is not None:
                raise ConfigError(f"finding '{self.kind}' takes no device, got device={self.device!r}")
            return
        if self.device is None:
            names = ", ".join(d.name for d in spec.devices)
            raise ConfigError(f"finding '{self.kind}' needs a device (one of: {names})")
        spec.device(self.device)

    def _allowed_sides(self, spec: FindingKind) -> tuple[str | None, ...]:
        return spec.device(self.device).sides if self.device is not None else spec.sides

    def _check_side(self, spec: FindingKind) -> None:
        if self.side is not None and self.side not in SIDES:
            raise ConfigError(f"unknown side {self.side!r} (sides: {', '.join(SIDES)}; the patient's side)")
        allowed = self._allowed_sides(spec)
        if self.side not in allowed:
            shown = ", ".join("none" if s is None else s for s in allowed)
            what = f"'{self.kind}'" + (f" ({self.device})" if self.device else "")
            raise ConfigError(f"finding {what} cannot have side {self.side!r} (allowed: {shown})")

    def _check_zone(self, spec: FindingKind) -> None:
        if self.zone is not None and self.zone not in ZONES:
            raise ConfigError(f"unknown zone {self.zone!r} (zones: {', '.join(ZONES)})")
        if spec.zoned and self.zone is None:
            raise ConfigError(f"finding '{self.kind}' needs a zone (one of: {', '.join(spec.zones)})")
        if not spec.zoned and self.zone is not None:
            raise ConfigError(f"finding '{self.kind}' takes no zone, got zone={self.zone!r}")

    def _check_size(self, spec: FindingKind) -> None:
        if spec.size_mm is None:
            if self.size_mm is not None:
                raise ConfigError(f"finding '{self.kind}' takes no size, got size_mm={self.size_mm!r}")
            return
        low, high = spec.size_mm
        if self.size_mm is None or not low <= self.size_mm <= high:
            raise ConfigError(f"finding '{self.kind}' needs size_mm between {low:g} and {high:g}, got {self.size_mm!r}")


HEAD_SIDES = ("token", "study", "cell")  # how a finding head learns sides: see MedVLConfig.finding_sides
CELL_SIDES = ("left", "right")  # the patient's side of a frontal radiograph's cell


def finding_label(finding: Finding | dict[str, Any], with_side: bool = True) -> str:
    """A finding's class label for auxiliary training: ``kind``, then side and device if any.

    ``"pleural_effusion:left"``, ``"cardiomegaly"``, ``"support_device:right:central_line"``;
    without the side: ``"pleural_effusion"``, ``"support_device:central_line"``.
    """
    values = _values(finding)
    keys = ("kind", "side", "device") if with_side else ("kind", "device")
    return ":".join(str(values[key]) for key in keys if values.get(key))


def label_kind(label: str) -> str:
    """The finding kind of a finding-head label (``"pleural_effusion:left"`` -> ``"pleural_effusion"``)."""
    return label.split(":", 1)[0]


def study_labels(finding: Finding | dict[str, Any], sides: str = "token") -> list[str]:
    """The finding-head labels a study with ``finding`` has (``sides``: see ``HEAD_SIDES``).

    ``"token"``: its one label with the side (``"atelectasis:bilateral"``). ``"study"`` and
    ``"cell"``: its label without the side, plus one per side it is on: a bilateral finding is on
    the left *and* on the right (``"atelectasis"``, ``"atelectasis:left"``, ``"atelectasis:right"``).
    """
    if sides == "token":
        return [finding_label(finding)]
    values = _values(finding)
    side = values.get("side")
    on = CELL_SIDES if side == "bilateral" else (side,) if side else ()
    return [finding_label(values, with_side=False)] + [finding_label({**values, "side": one}) for one in on]


def reached_token_labels(
    finding: Finding | dict[str, Any], sides: str = "token", cell_side: str | None = None
) -> list[str]:
    """The labels a visual token that ``finding``'s mask reaches is taught as present (the
    others are taught absent, or not at all: see :func:`medvl.train.batching.token_targets`).

    ``"token"``: the one sided label. ``"study"``: the label without the side (no token learns a
    side). ``"cell"``: the label without the side, and a sided label means "this cell shows the
    finding on that side of the patient": 1 where the view shows which side the cell lies on
    (``cell_side``: a frontal radiograph's half) - for a bilateral finding the cell's own side, so
    a right basal cell is "atelectasis:right" in a bilateral study as in a right-sided one - and 0
    where it does not (a lateral view, where both lungs overlap). A device's side is where it
    enters the body, so only the cells where it enters the picture are given a ``cell_side``, and
    they show its side when they lie on that side.
    """
    values = _values(finding)
    if sides != "cell":
        return [finding_label(values, with_side=sides == "token")]
    side = values.get("side")
    if not side or cell_side is None or (values.get("device") and cell_side != side):
        return [finding_label(values, with_side=False)]
    shown = {**values, "side": cell_side if side == "bilateral" else side}
    return [finding_label(values, with_side=False), finding_label(shown)]


def _values(finding: Finding | dict[str, Any]) -> dict[str, Any]:
    return finding.to_dict() if isinstance(finding, Finding) else dict(finding)


def label_has_side(label: str) -> bool:
    """Whether a finding-head label names a side (``"nodule:left"``)."""
    return any(part in SIDES for part in label.split(":"))
