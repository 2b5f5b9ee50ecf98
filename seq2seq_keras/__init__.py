"""seq2seq_keras: sequence-to-sequence translation with attention in Keras 3.

From the information bottleneck of a plain encoder-decoder to attention you can
see (heatmaps), trained with ``model.fit`` and served with TensorFlow Serving.

The package is lazy (PEP 562): ``import seq2seq_keras`` imports neither Keras nor
TensorFlow; ``from seq2seq_keras import Seq2Seq`` (or ``seq2seq_keras.Seq2Seq``)
imports the module that defines the name on first use. So the command line starts
fast and can quiet TensorFlow's logging before TensorFlow loads. Keras registers the
custom layers when their modules are imported: before
``keras.saving.load_model("model.keras")``, import the class
(``from seq2seq_keras import Seq2Seq``) or load with
:func:`seq2seq_keras.run_folder.load_model`, which does.
"""

import importlib as _importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first access).
_EXPORTS = {
    "AttentionSnapshots": "callbacks",
    "BahdanauAttention": "attention",
    "Decoder": "decoder",
    "Encoder": "encoder",
    "LuongAttention": "attention",
    "Seq2Seq": "model",
    "TextProcessor": "text",
    "Translation": "translation",
}

__all__ = [
    "AttentionSnapshots",
    "BahdanauAttention",
    "Decoder",
    "Encoder",
    "LuongAttention",
    "Seq2Seq",
    "TextProcessor",
    "Translation",
    "__version__",
]


def __getattr__(name: str):
    """``seq2seq_keras.Seq2Seq`` etc.: import the defining module on first access (PEP 562).

    Submodules (``seq2seq_keras.fast_gru``) are imported on first access too, as
    ``from seq2seq_keras import fast_gru`` does.
    """
    if name in _EXPORTS:
        value = getattr(_importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name.startswith("__"):  # probes such as __wrapped__ are not submodules
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return _importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise  # the submodule exists but one of its imports is missing: say so
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
