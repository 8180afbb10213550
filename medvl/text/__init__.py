"""Report text: cleaning, sections and the tagged model target, tokenizers.

* :func:`clean_report` with a :class:`CleaningConfig` - raw text -> ``"heart is normal . no effusion ."``
  (styles ``basic``, ``r2gen_iu``, ``r2gen_mimic``); :func:`split_sentences`, :func:`to_display`;
* :func:`split_sections` - raw report -> ``{"findings": ..., "impression": ...}``;
  :func:`sections_to_target` / :func:`target_to_sections` - the tagged target
  ``"[findings] ... [impression] ..."`` and back;
* :func:`train_tokenizer` / :func:`load_tokenizer` - ``PreTrainedTokenizerFast`` for targets;
  :func:`load_pretrained_tokenizer` - a pretrained language model's tokenizer, with the tags added.
"""

from medvl.text.cleaning import (
    CLEANING_STYLES,
    CleaningConfig,
    clean_report,
    split_sentences,
    to_display,
)
from medvl.text.sections import (
    HEADER_ALIASES,
    PREAMBLE,
    SECTION_NAMES,
    SECTION_TAGS,
    TARGET_ORDER,
    clean_sections,
    sections_to_target,
    split_sections,
    target_to_sections,
)
from medvl.text.tokenizer import (
    SPECIAL_TOKENS,
    TOKENIZER_KINDS,
    load_pretrained_tokenizer,
    load_tokenizer,
    train_tokenizer,
)

__all__ = [
    "CLEANING_STYLES",
    "HEADER_ALIASES",
    "PREAMBLE",
    "SECTION_NAMES",
    "SECTION_TAGS",
    "SPECIAL_TOKENS",
    "TARGET_ORDER",
    "TOKENIZER_KINDS",
    "CleaningConfig",
    "clean_report",
    "clean_sections",
    "load_pretrained_tokenizer",
    "load_tokenizer",
    "sections_to_target",
    "split_sections",
    "split_sentences",
    "target_to_sections",
    "to_display",
    "train_tokenizer",
]
