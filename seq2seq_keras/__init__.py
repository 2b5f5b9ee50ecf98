"""seq2seq_keras: sequence-to-sequence translation with attention in Keras 3.

From the information bottleneck of a plain encoder-decoder to attention you can
see (heatmaps), trained with ``model.fit`` and served with TensorFlow Serving.

The package is laid out by role: ``model`` (the papers), ``decoding``, ``data``,
``training``, ``evaluation``, ``serving`` and ``cli``, plus a few shared modules
(``text``, ``translation``, ``words``, ``plotting``, ``atomic``, ``startup``, ``runs``);
``docs/architecture.md`` draws the map.

The package is lazy (PEP 562): ``import seq2seq_keras`` imports neither Keras nor
TensorFlow; ``from seq2seq_keras import Seq2Seq`` (or ``seq2seq_keras.Seq2Seq``)
imports the module that defines the name on first use. So the command line starts
fast and can quiet TensorFlow's logging before TensorFlow loads. Keras registers the
custom layers when their modules are imported: before
``keras.saving.load_model("model.keras")``, import the class
(``from seq2seq_keras import Seq2Seq``) or load with
:func:`seq2seq_keras.training.load_model`, which does.
"""

from ._lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AttentionSnapshots": "evaluation.attention_snapshots",
        "BahdanauAttention": "model.attention",
        "Decoder": "model.decoder",
        "Encoder": "model.encoder",
        "LuongAttention": "model.attention",
        "Seq2Seq": "model.seq2seq",
        "TextProcessor": "text",
        "Translation": "translation",
    },
)

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
