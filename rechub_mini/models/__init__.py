"""The models: ESMM and its BASE for click -> purchase, MMoE and shared-bottom for any tasks."""
from .base import MultiTaskModel
from .base_cvr import BaseCVR
from .esmm import ESMM
from .mmoe import MMOE
from .shared_bottom import SharedBottom

MODEL_CLASSES = {cls.__name__: cls for cls in (ESMM, BaseCVR, MMOE, SharedBottom)}

__all__ = ["MultiTaskModel", "ESMM", "BaseCVR", "MMOE", "SharedBottom", "MODEL_CLASSES"]
