"""rechub_mini: multi-task ranking (ESMM, MMoE) on Ali-CCP, taught in notebooks.

The pipeline, in the order the package is laid out:
features -> data (batching) -> models -> trainer -> metrics.
"""

__version__ = "0.1.0"

from .checkpoint import load_model
from .data import BatchLoader, DataGenerator
from .errors import CheckpointError, DataError, TrainingError
from .features import DenseFeature, SparseFeature
from .metrics import TaskScores
from .models import ESMM, MMOE, BaseCVR, SharedBottom
from .trainer import MTLTrainer

__all__ = [
    "SparseFeature", "DenseFeature", "DataGenerator", "BatchLoader", "ESMM", "BaseCVR", "MMOE",
    "SharedBottom", "MTLTrainer", "TaskScores", "load_model", "DataError", "TrainingError",
    "CheckpointError", "__version__",
]
