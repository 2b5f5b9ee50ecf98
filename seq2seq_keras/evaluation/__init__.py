"""How good a model is: BLEU/chrF overall and by sentence length (``scores``), attention against gold
alignments (``alignment``), robustness to unseen names, numbers and long inputs (``robustness``), the report
files (``report``) and the TensorBoard callback that shows attention learning (``attention_snapshots``)."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "evaluate": "scores",
        "trim_empty_tail": "scores",
    },
)
