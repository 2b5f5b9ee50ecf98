"""Measuring tools shared by the benchmark parts: the machine, peak matmul speed, model FLOPs, memory.

Model FLOPs are counted from the layer sizes and the *padded* batch shapes a step
actually computes, as ``2 x multiply-adds`` of the matrix multiplies of the
model's own formulation (elementwise ops, softmax and embedding lookups are not
counted), times 3 for a training step (forward, and a backward pass that costs
two forward passes). The key projection ``W2 h`` is counted once per sentence for
every model: recomputing it at each decoder step, as the tutorial formulation
does, is wasted work and shows up as a lower efficiency, not as more FLOPs.
A Transformer counts its projections, attention scores ``Q K^T`` and weighted sums
over every position of the padded batch, its feed-forward layers and the output
projection (:func:`transformer_forward_macs`); :func:`sizes_of` and
:func:`forward_macs` pick the right count for either architecture.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import statistics
import sys
import time
from importlib import metadata


# --------------------------------------------------------------------------- machine
def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bfloat16_matmul() -> bool:
    """AMX-BF16 or AVX512-BF16: oneDNN runs bfloat16 matrix multiplies natively."""
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


#: The CPU flags that decide how bfloat16 runs (the ``auto`` precision rules differ by them), reported by every run.
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")


def cpu_description() -> dict[str, object]:
    """The CPU the bench runs on, without TensorFlow: model name, cores, and which of :data:`BF16_FLAGS` it has."""
    flags = cpu_flags()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "bf16_flags": {f: f in flags for f in BF16_FLAGS}}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "tensorflow-text", "numpy", "sacrebleu", "seq2seq_keras"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine_description() -> dict[str, object]:
    """Date, CPU, cores, load, library versions and the GPU (if TensorFlow sees one)."""
    import tensorflow as tf

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    gpus = tf.config.list_physical_devices("GPU")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "bfloat16_matmul": cpu_has_bfloat16_matmul(),
        "bf16_flags": cpu_description()["bf16_flags"],
        "gpu": ", ".join(d.name for d in gpus) or "none",
        "load_average_at_start": " / ".join(f"{x:.2f}" for x in load),
        "platform": platform.platform(),
        "versions": library_versions(),
        "command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks.run", *sys.argv[1:]]),
    }


# --------------------------------------------------------------------------- timing
def median(values) -> float:
    values = [v for v in values if v is not None]
    return float(statistics.median(values)) if values else float("nan")


def percentile(values, q: float) -> float:
    import numpy as np

    values = [v for v in values if v is not None]
    return float(np.percentile(values, q)) if values else float("nan")


def matmul_flops_per_second(n: int = 2048, dtype: str = "float32", repeats: int = 9, warmup: int = 3) -> float:
    """Median FLOP/s of an ``n x n`` by ``n x n`` matrix multiply in this process (``2 n^3`` FLOPs each)."""
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal([n, n], seed=[1, 2]), dtype)
    b = tf.cast(tf.random.stateless_normal([n, n], seed=[3, 4]), dtype)
    product = tf.function(tf.matmul)
    for _ in range(warmup):
        product(a, b).numpy()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        seconds.append(time.perf_counter() - start)
    return 2.0 * n**3 / median(seconds)


def peak_rss_mb() -> float:
    """This process' peak resident set size so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


# --------------------------------------------------------------------------- FLOPs
@dataclasses.dataclass(frozen=True)
class OurSizes:
    """Layer sizes of a :class:`seq2seq_keras.Seq2Seq` (one encoder layer, GRU)."""

    embedding_dim: int
    encoder_units: int  # per direction
    bidirectional: bool
    attention: str | None
    attention_units: int
    input_feeding: bool
    target_vocabulary: int

    @property
    def value_dim(self) -> int:
        return self.encoder_units * (2 if self.bidirectional else 1)

    @property
    def decoder_units(self) -> int:
        return self.value_dim

    @classmethod
    def of(cls, model) -> OurSizes:
        return cls(
            embedding_dim=model.embedding_dim,
            encoder_units=model.encoder_units,
            bidirectional=model.bidirectional,
            attention=model.attention_type,
            attention_units=model.decoder.attention_units,
            input_feeding=getattr(model, "input_feeding", True),
            target_vocabulary=model.target_text.vocabulary_size,
        )


def our_forward_macs(sizes: OurSizes, batch: int, src_len: int, tgt_len: int) -> int:
    """Multiply-adds of one teacher-forced forward pass of our model (see the module docstring)."""
    E, Ue, V, U, A = (
        sizes.embedding_dim,
        sizes.encoder_units,
        sizes.value_dim,
        sizes.decoder_units,
        sizes.attention_units,
    )
    D = 2 if sizes.bidirectional else 1
    B, S, T = batch, src_len, tgt_len
    macs = B * S * D * 3 * Ue * (E + Ue)  # encoder GRU
    macs += B * V * U  # bridge
    per_step = 0
    if sizes.attention == "bahdanau":
        macs += B * S * V * A  # keys, once per sentence
        per_step += B * U * A + B * S * A  # W1 q, v^T tanh(.)
    elif sizes.attention is not None:
        if sizes.attention == "luong-general":
            macs += B * S * V * U
        per_step += B * S * U  # q^T k
    if sizes.attention is not None:
        per_step += B * S * V  # context
    if sizes.input_feeding:
        per_step += B * 3 * U * (E + V) + B * 3 * U * U  # GRU cell on [embedding ; context]
        features = U + V
    else:
        per_step += B * 3 * U * (E + U) + B * (U + V) * U  # GRU on the embedding, W_c
        features = U
    macs += T * per_step
    macs += B * T * features * sizes.target_vocabulary  # output projection
    return int(macs)


@dataclasses.dataclass(frozen=True)
class TransformerSizes:
    """Layer sizes of a :class:`seq2seq_keras.Seq2Seq` with ``architecture="transformer"``."""

    num_layers: int
    model_dim: int
    ff_dim: int
    target_vocabulary: int

    @classmethod
    def of(cls, model) -> TransformerSizes:
        return cls(
            num_layers=model.num_layers,
            model_dim=model.model_dim,
            ff_dim=model.ff_dim,
            target_vocabulary=model.target_text.vocabulary_size,
        )


def transformer_forward_macs(sizes: TransformerSizes, batch: int, src_len: int, tgt_len: int) -> int:
    """Multiply-adds of one teacher-forced forward pass of the Transformer (every position, padding included).

    Per encoder layer: ``W^Q, W^K, W^V, W^O`` on every source position (``4 S d^2``),
    ``Q K^T`` and the weighted sum of values (``2 S^2 d``), the feed-forward network
    (``2 S d ff``). Per decoder layer: the causal self-attention (``4 T d^2 + 2 T^2 d``,
    computed in full and masked), the cross-attention (``W^Q, W^O`` on the target,
    ``W^K, W^V`` on the source: ``2 T d^2 + 2 S d^2``, and ``2 T S d``), the
    feed-forward network (``2 T d ff``). Then the output projection ``T d V``.
    """
    B, S, T, d, f, L = batch, src_len, tgt_len, sizes.model_dim, sizes.ff_dim, sizes.num_layers
    encoder = 4 * S * d * d + 2 * S * S * d + 2 * S * d * f
    decoder = (4 * T * d * d + 2 * T * T * d) + (2 * T * d * d + 2 * S * d * d + 2 * T * S * d) + 2 * T * d * f
    return int(B * (L * (encoder + decoder) + T * d * sizes.target_vocabulary))


def sizes_of(model) -> OurSizes | TransformerSizes:
    """The sizes :func:`forward_macs` needs, for either architecture of :class:`seq2seq_keras.Seq2Seq`."""
    if getattr(model, "architecture", "rnn") == "transformer":
        return TransformerSizes.of(model)
    return OurSizes.of(model)


def forward_macs(sizes, batch: int, src_len: int, tgt_len: int) -> int:
    """:func:`transformer_forward_macs` or :func:`our_forward_macs`, by the type of ``sizes``."""
    count = transformer_forward_macs if isinstance(sizes, TransformerSizes) else our_forward_macs
    return count(sizes, batch, src_len, tgt_len)


@dataclasses.dataclass(frozen=True)
class TutorialSizes:
    embedding_dim: int
    units: int
    target_vocabulary: int


def tutorial_forward_macs(sizes: TutorialSizes, batch: int, src_len: int, steps: int) -> int:
    """Multiply-adds of one forward pass of the tutorial formulation (keys counted once)."""
    E, U, B, S = sizes.embedding_dim, sizes.units, batch, src_len
    macs = B * S * 3 * U * (E + U)  # encoder GRU
    macs += B * S * U * U  # W2 keys (once: see the module docstring)
    per_step = B * 3 * U * (E + U) + B * U * U + B * S * U + B * S * U + B * 2 * U * U
    per_step += B * U * sizes.target_vocabulary  # fc
    return int(macs + steps * per_step)


def training_flops(forward_macs: int) -> int:
    """FLOPs of a training step: 2 FLOPs per multiply-add, forward + backward (= 2 forwards)."""
    return 6 * int(forward_macs)
