"""The report model: `MedVLConfig`, `MedVLModel`, and building, saving and loading them."""

from transformers import AutoConfig, AutoModel

from medvl.model.config import MedVLConfig
from medvl.model.decoding import DecodingConfig
from medvl.model.encoder import EncoderConfig, VisualEncoder
from medvl.model.modeling import IGNORE_INDEX, MedVLModel, MedVLOutput

AutoConfig.register(MedVLConfig.model_type, MedVLConfig, exist_ok=True)
AutoModel.register(MedVLConfig, MedVLModel, exist_ok=True)

__all__ = [
    "IGNORE_INDEX",
    "DecodingConfig",
    "EncoderConfig",
    "MedVLConfig",
    "MedVLModel",
    "MedVLOutput",
    "VisualEncoder",
]
