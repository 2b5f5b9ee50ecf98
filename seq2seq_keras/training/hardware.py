"""What this machine computes fast, and the training options that follow: :class:`TrainConfig`'s ``"auto"``.

Two steps, so that the rules are pure functions a test can feed any machine:

* :func:`detect_machine` gathers the facts (:class:`Machine`): the CPU's flags
  from ``/proc/cpuinfo``, each GPU's compute capability from TensorFlow, and the
  two environment variables that decide whether TensorFlow's CPU kernels can use
  AMX at all (``TF_ENABLE_ONEDNN_OPTS``, ``ONEDNN_MAX_CPU_ISA``).
* :func:`resolve_options` turns ``"auto"`` settings into choices
  (:class:`TrainingOptions`), each with its reason; explicit settings are kept as
  they are. :meth:`TrainingOptions.describe` is the one line ``train()`` prints.

The rules (the measurements behind them are in docs/training.md, "Options chosen for the machine"):

* **precision**: ``mixed_bfloat16`` (bfloat16 compute, float32 weights, float32
  logits and loss) where matrix multiplies run natively in bfloat16: every GPU
  of compute capability >= 8.0 (bf16 tensor cores, Ampere and later), or, with
  no GPU, a CPU with AMX-BF16 (oneDNN's bf16 matmul ran 3.7x its float32 one on
  an AMX Xeon in ``make bench``, training 1.28x faster) *unless* the step is compiled
  with XLA, whose CPU backend made bf16 slower than float32 (fast mode: 2.97x vs
  3.58x the tutorial). AVX512-BF16 alone is not enough: on a 2-core AMD EPYC with
  it, bf16 matmuls ran only 1.3-1.7x float32 and a demo-size training step in
  mixed_bfloat16 was no faster than in float32. The AMX path is oneDNN's: with
  ``TF_ENABLE_ONEDNN_OPTS=0`` (oneDNN off) or ``ONEDNN_MAX_CPU_ISA`` capped below
  AMX (e.g. ``AVX512_CORE``) bf16 epochs ran 1.2-1.9x *slower* than float32 on an
  AMX Xeon (4 of 4 pairs), so the rule treats such a CPU as one without AMX.
  ``float32`` otherwise.
* **jit_compile** (XLA): on only where the run is long enough to repay the
  compilation (once per padded batch shape, train and validation: 18 shapes for
  2,000 demo pairs) — ``planned_steps >= XLA_MIN_STEPS`` — and, on a CPU with
  AMX-BF16, off: bf16 without XLA is within ~7% of float32 with XLA there
  (2.16x vs 2.33x) with no compile time and without XLA's extra ~1 GB of memory.

TPUs are not detected (a ``TPUStrategy`` program sets its policy itself:
``mixed_bfloat16`` is TPUs' native format). The model's ``implementation="auto"``
(fused GRU scans on a CPU, Keras' cuDNN layers in the fast mode on a GPU) and
length-bucketed batches are already the fast choices and need no rule here.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

PRECISIONS = ("auto", "float32", "mixed_bfloat16")
JIT_COMPILE = ("auto", "on", "off")

#: CPU flags for which bf16 training pays (AMX tiles: Intel Sapphire Rapids and later). ``avx512_bf16``
#: alone (Cooper Lake, AMD Zen 4) runs bf16 dot products but measured no faster here (module docstring).
BF16_CPU_FLAGS = ("amx_bf16",)
#: First GPU compute capability with bfloat16 tensor cores (Ampere).
BF16_GPU_CAPABILITY = (8, 0)
#: Fewest planned optimizer steps for which ``jit_compile="auto"`` turns XLA on. Compilation
#: costs ~1,000 steps' worth of the time XLA saves per step on an idle AMX Xeon in ``make bench``
#: (~60 s against 267 -> 202 ms per step) and ~8,000 on a busy 2-core EPYC at the demo size
#: (~220 s for 18 shapes against 99 -> 72 ms); shorter runs lose time to it.
XLA_MIN_STEPS = 5000
#: The environment variable that points :func:`detect_machine` at another machine's cpuinfo.
CPUINFO_VARIABLE = "SEQ2SEQ_KERAS_CPUINFO"
#: ``ONEDNN_MAX_CPU_ISA`` values that leave AMX to oneDNN (any ISA name with ``AMX`` in it also does).
ONEDNN_ISA_WITH_AMX = ("ALL", "DEFAULT")


@dataclasses.dataclass(frozen=True)
class Machine:
    """The facts the rules need: CPU flags, GPU compute capabilities (empty: no GPU), and the
    values of ``TF_ENABLE_ONEDNN_OPTS`` and ``ONEDNN_MAX_CPU_ISA`` (None: unset)."""

    cpu_flags: frozenset[str] = frozenset()
    gpu_capabilities: tuple[tuple[int, int], ...] = ()
    onednn_opts: str | None = None
    onednn_max_isa: str | None = None

    @property
    def onednn_amx_blocked(self) -> str:
        """Why TensorFlow's CPU kernels cannot use AMX here (empty: nothing stops them)."""
        if self.onednn_opts is not None and self.onednn_opts.strip().lower() in ("0", "false", "off", "no"):
            return f"oneDNN is off (TF_ENABLE_ONEDNN_OPTS={self.onednn_opts})"
        isa = (self.onednn_max_isa or "").strip().upper()
        if isa and isa not in ONEDNN_ISA_WITH_AMX and "AMX" not in isa:
            return f"oneDNN is capped below AMX (ONEDNN_MAX_CPU_ISA={self.onednn_max_isa})"
        return ""

    @property
    def cpu_bfloat16(self) -> tuple[str, ...]:
        """The flags of :data:`BF16_CPU_FLAGS` this CPU has and oneDNN may use (empty: bf16 does not pay)."""
        if self.onednn_amx_blocked:
            return ()
        return tuple(flag for flag in BF16_CPU_FLAGS if flag in self.cpu_flags)


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The flags of the first ``flags`` line of ``/proc/cpuinfo`` text (empty if there is none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def detect_machine(cpuinfo_path: str | Path | None = None, environ=None) -> Machine:
    """This machine's :class:`Machine` (no ``/proc/cpuinfo``, e.g. macOS: no CPU flags, so no bf16).

    ``cpuinfo_path``: default ``$SEQ2SEQ_KERAS_CPUINFO`` if set (a saved ``/proc/cpuinfo`` of
    another machine, to see or test what ``auto`` picks there: ``tests/fixtures/cpuinfo-sapphire-rapids``
    makes ``make test`` run as on an AMX Xeon), else ``/proc/cpuinfo``.
    ``environ``: where to read that and the oneDNN variables (default ``os.environ``).
    """
    import tensorflow as tf

    environ = os.environ if environ is None else environ
    if cpuinfo_path is None:
        cpuinfo_path = environ.get(CPUINFO_VARIABLE) or "/proc/cpuinfo"
    try:
        flags = parse_cpu_flags(Path(cpuinfo_path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        flags = frozenset()
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        capabilities.append(tuple(capability) if capability else (0, 0))
    return Machine(flags, tuple(capabilities), environ.get("TF_ENABLE_ONEDNN_OPTS"), environ.get("ONEDNN_MAX_CPU_ISA"))


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """Resolved settings: ``precision`` (a Keras dtype policy name), ``jit_compile``, and why each."""

    precision: str
    jit_compile: bool
    reasons: dict = dataclasses.field(default_factory=dict, compare=False)

    def describe(self) -> str:
        """One line, e.g. ``options: precision=float32 (set), jit_compile=off (run too short: ~60 steps < 2000)``."""
        jit = "on" if self.jit_compile else "off"
        return (
            f"options: precision={self.precision} ({self.reasons['precision']}), "
            f"jit_compile={jit} ({self.reasons['jit_compile']})"
        )


def resolve_options(precision: str, jit_compile: str, machine: Machine, planned_steps: int) -> TrainingOptions:
    """Resolve ``"auto"`` for ``precision`` and ``jit_compile`` on ``machine`` for a run of ``planned_steps``.

    Args:
        precision: ``"auto"``, ``"float32"`` or ``"mixed_bfloat16"``.
        jit_compile: ``"auto"``, ``"on"`` or ``"off"``.
        machine: the facts (:func:`detect_machine`, or any :class:`Machine` in a test).
        planned_steps: optimizer steps the whole run will take (all epochs).

    Raises:
        ValueError: a setting outside those choices.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: use one of {', '.join(PRECISIONS)}.")
    if jit_compile not in JIT_COMPILE:
        raise ValueError(f"jit_compile={jit_compile!r}: use one of {', '.join(JIT_COMPILE)}.")
    on_gpu = bool(machine.gpu_capabilities)
    cpu_bf16 = not on_gpu and bool(machine.cpu_bfloat16)

    if jit_compile != "auto":
        use_jit, jit_reason = jit_compile == "on", "set"
    elif cpu_bf16 and precision in ("auto", "mixed_bfloat16"):
        use_jit, jit_reason = False, "bf16 without XLA on this CPU: about as fast, no compile time, less memory"
    elif planned_steps < XLA_MIN_STEPS:
        use_jit, jit_reason = False, f"run too short to repay compilation: ~{planned_steps} steps < {XLA_MIN_STEPS}"
    else:
        use_jit, jit_reason = True, f"long run: ~{planned_steps} steps >= {XLA_MIN_STEPS}"

    if precision != "auto":
        chosen, reason = precision, "set"
    elif on_gpu:
        weakest = min(machine.gpu_capabilities)
        if weakest >= BF16_GPU_CAPABILITY:
            chosen, reason = "mixed_bfloat16", f"bf16 tensor cores: GPU compute capability {weakest[0]}.{weakest[1]}"
        else:
            chosen, reason = (
                "float32",
                (
                    f"no bf16 tensor cores: GPU compute capability {weakest[0]}.{weakest[1]} "
                    f"< {BF16_GPU_CAPABILITY[0]}.{BF16_GPU_CAPABILITY[1]}"
                ),
            )
    elif not cpu_bf16 and machine.onednn_amx_blocked and any(f in machine.cpu_flags for f in BF16_CPU_FLAGS):
        chosen, reason = "float32", f"AMX-BF16 on this CPU, but {machine.onednn_amx_blocked}: bf16 measured slower"
    elif not cpu_bf16:
        chosen, reason = (
            "float32",
            "no AMX-BF16 on this CPU"
            + (": its avx512_bf16 alone measured no faster" if "avx512_bf16" in machine.cpu_flags else ""),
        )
    elif use_jit:
        chosen, reason = "float32", "XLA on a CPU runs bf16 slower than float32"
    else:
        chosen, reason = "mixed_bfloat16", "AMX-BF16 on this CPU"
    return TrainingOptions(chosen, use_jit, {"precision": reason, "jit_compile": jit_reason})
