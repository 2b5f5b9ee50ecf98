"""A training run: its settings (``config``: :class:`TrainConfig`), the ``auto`` precision and XLA rules
(``hardware``), the loop around ``model.fit`` (``loop``: :func:`train`), the run folder it writes and resumes
(``run_folder``) and the atomic checkpoints that make resuming exact (``checkpointing``)."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "TrainConfig": "config",
        "train": "loop",
        "prepare_data": "loop",
        "load_model": "run_folder",
        "load_checkpoint": "run_folder",
    },
)
