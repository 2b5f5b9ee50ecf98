"""seq2seq_keras: sequence-to-sequence translation with attention in Keras 3.

From the information bottleneck of a plain encoder-decoder to attention you can
see (heatmaps), trained with ``model.fit`` and served with TensorFlow Serving.
"""

from .attention import BahdanauAttention, LuongAttention
from .callbacks import AttentionSnapshots
from .decoder import Decoder
from .encoder import Encoder
from .model import Seq2Seq
from .text import TextProcessor
from .translation import Translation

__version__ = "0.1.0"

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
