"""rechub_mini's exceptions, so learners get a message instead of a torch traceback.

Every check in rechub_mini that rejects data raises `DataError`; a run that cannot go on raises
`TrainingError`, a checkpoint that cannot be used `CheckpointError`. Its message says what was
expected, what was found (file, column, row, value) and what to do about it. It subclasses
`ValueError`, so code that already catches `ValueError` keeps working.
"""


class DataError(ValueError):
    """Input data that rechub_mini cannot use; the message says where and how to fix it."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message says when and what to try."""


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, or does not match the model or features."""
