"""The machine facts and the rules that resolve ``"auto"`` training options (pure functions).

The machines are described, not detected: ``/proc/cpuinfo`` excerpts of real CPUs
(flags lines shortened to the relevant ones plus neighbours) and GPU compute
capabilities, so every rule is checked whatever machine runs the tests.
"""

from __future__ import annotations

import dataclasses

import pytest

from seq2seq_keras.training.hardware import (
    XLA_MIN_STEPS,
    Machine,
    TrainingOptions,
    detect_machine,
    parse_cpu_flags,
    resolve_options,
)

BROADWELL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz
flags\t\t: fpu vme sse2 ssse3 fma avx avx2 bmi2 rdseed adx
bugs\t\t: cpu_meltdown spectre_v1

processor\t: 1
flags\t\t: fpu vme sse2 ssse3 fma avx avx2 bmi2 rdseed adx
"""
ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu avx2 avx512f avx512dq avx512_bf16 clzero xsaveerptr
"""
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
"""


def cpu(text: str, *gpus: tuple[int, int]) -> Machine:
    return Machine(parse_cpu_flags(text), tuple(gpus))


def test_parse_cpu_flags_reads_the_flags_line():
    assert parse_cpu_flags(BROADWELL) == {"fpu", "vme", "sse2", "ssse3", "fma", "avx", "avx2", "bmi2", "rdseed", "adx"}
    assert "amx_bf16" in parse_cpu_flags(SAPPHIRE_RAPIDS)
    assert "bugs" not in parse_cpu_flags(BROADWELL) and "cpu_meltdown" not in parse_cpu_flags(BROADWELL)
    assert parse_cpu_flags("") == frozenset() and parse_cpu_flags("model name : x\n") == frozenset()


def test_detect_machine_reads_the_given_cpuinfo(tmp_path):
    (tmp_path / "cpuinfo").write_text(SAPPHIRE_RAPIDS)
    machine = detect_machine(tmp_path / "cpuinfo", environ={})
    assert machine.cpu_flags == parse_cpu_flags(SAPPHIRE_RAPIDS) and machine.cpu_bfloat16 == ("amx_bf16",)
    assert detect_machine(tmp_path / "missing").cpu_flags == frozenset()


SHORT, LONG = XLA_MIN_STEPS - 1, XLA_MIN_STEPS


def test_detect_machine_reads_the_onednn_variables(tmp_path):
    (tmp_path / "cpuinfo").write_text(SAPPHIRE_RAPIDS)
    machine = detect_machine(tmp_path / "cpuinfo", environ={"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert (machine.onednn_opts, machine.onednn_max_isa) == ("0", "AVX2")


@pytest.mark.parametrize(
    "opts, isa, amx_usable",
    [
        (None, None, True),
        ("1", None, True),
        ("0", None, False),
        ("false", None, False),
        (" OFF ", None, False),
        (None, "ALL", True),
        (None, "default", True),
        (None, "AVX512_CORE_AMX", True),
        (None, "AVX10_1_512_AMX_FP16", True),
        (None, "AVX512_CORE", False),
        (None, "AVX512_CORE_BF16", False),
        (None, "avx2", False),
        ("1", "AVX512_CORE", False),
    ],
)
def test_auto_keeps_float32_where_onednn_cannot_use_amx(opts, isa, amx_usable):
    """bf16 pays only through oneDNN's AMX kernels: oneDNN off or capped below AMX -> float32, and the reason says why."""
    amx = dataclasses.replace(cpu(SAPPHIRE_RAPIDS), onednn_opts=opts, onednn_max_isa=isa)
    options = resolve_options("auto", "auto", amx, SHORT)
    assert options.precision == ("mixed_bfloat16" if amx_usable else "float32")
    assert (amx.cpu_bfloat16 == ("amx_bf16",)) == amx_usable
    if not amx_usable:
        reason = options.reasons["precision"]
        assert ("TF_ENABLE_ONEDNN_OPTS" in reason) == (opts is not None and opts.strip() not in ("1",))
        assert ("ONEDNN_MAX_CPU_ISA" in reason) == ("TF_ENABLE_ONEDNN_OPTS" not in reason)
        # Without bf16 the XLA rule is the run-length one again.
        assert resolve_options("auto", "auto", amx, LONG).jit_compile is True


@pytest.mark.parametrize(
    "machine, steps, precision, jit",
    [
        (cpu(BROADWELL), SHORT, "float32", False),
        (cpu(BROADWELL), LONG, "float32", True),  # the boundary: XLA_MIN_STEPS planned steps turn XLA on
        (cpu(ZEN4), SHORT, "float32", False),  # avx512_bf16 without AMX: bf16 does not pay
        (cpu(ZEN4), 10 * LONG, "float32", True),
        (cpu(SAPPHIRE_RAPIDS), SHORT, "mixed_bfloat16", False),
        (cpu(SAPPHIRE_RAPIDS), 10 * LONG, "mixed_bfloat16", False),  # bf16 without XLA beats float32 + XLA there
        (cpu(BROADWELL, (8, 0)), SHORT, "mixed_bfloat16", False),  # an A100
        (cpu(BROADWELL, (9, 0), (9, 0)), LONG, "mixed_bfloat16", True),  # two H100s: XLA by run length
        (cpu(SAPPHIRE_RAPIDS, (7, 5)), SHORT, "float32", False),  # a T4: the GPU decides, not the CPU
        (cpu(BROADWELL, (8, 6), (7, 0)), LONG, "float32", True),  # the weakest GPU decides
        (Machine(), SHORT, "float32", False),  # nothing known (no /proc/cpuinfo)
    ],
)
def test_auto_resolves_by_machine_and_run_length(machine, steps, precision, jit):
    options = resolve_options("auto", "auto", machine, steps)
    assert (options.precision, options.jit_compile) == (precision, jit)
    assert all(reason and reason != "set" for reason in options.reasons.values())


def test_auto_reasons_name_the_deciding_fact():
    assert "avx512_bf16" in resolve_options("auto", "auto", cpu(ZEN4), SHORT).reasons["precision"]
    assert "7.5" in resolve_options("auto", "auto", cpu(BROADWELL, (7, 5)), SHORT).reasons["precision"]
    assert (
        f"~{SHORT} steps < {XLA_MIN_STEPS}"
        in resolve_options("auto", "auto", cpu(BROADWELL), SHORT).reasons["jit_compile"]
    )


MACHINES = [cpu(BROADWELL), cpu(ZEN4), cpu(SAPPHIRE_RAPIDS), cpu(BROADWELL, (8, 0)), cpu(BROADWELL, (7, 0))]


@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("steps", [1, 10 * LONG])
def test_explicit_settings_win(machine, steps):
    for precision in ("float32", "mixed_bfloat16"):
        for jit in ("on", "off"):
            options = resolve_options(precision, jit, machine, steps)
            assert (options.precision, options.jit_compile) == (precision, jit == "on")
            assert options.reasons == {"precision": "set", "jit_compile": "set"}


def test_one_explicit_setting_steers_the_other_auto_one():
    amx = cpu(SAPPHIRE_RAPIDS)
    # XLA asked for on an AMX CPU: precision auto falls back to float32 (bf16 under XLA is slower there).
    assert resolve_options("auto", "on", amx, SHORT).precision == "float32"
    # float32 asked for on an AMX CPU: a long run then gets XLA like any float32 CPU run.
    assert resolve_options("float32", "auto", amx, LONG).jit_compile is True
    assert resolve_options("mixed_bfloat16", "auto", amx, LONG).jit_compile is False


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="precision='float16'"):
        resolve_options("float16", "auto", Machine(), 10)
    with pytest.raises(ValueError, match="jit_compile='yes'"):
        resolve_options("auto", "yes", Machine(), 10)


def test_describe_is_one_line_with_each_choice_and_reason():
    line = resolve_options("auto", "off", cpu(ZEN4), SHORT).describe()
    assert "\n" not in line
    assert line == (
        "options: precision=float32 (no AMX-BF16 on this CPU: its avx512_bf16 alone measured no faster), "
        "jit_compile=off (set)"
    )
    assert (
        TrainingOptions("float32", True, {"precision": "set", "jit_compile": "set"}).describe()
        == "options: precision=float32 (set), jit_compile=on (set)"
    )


# ----------------------------------------------------------------------------- the settings
def test_train_config_defaults_to_auto_and_takes_a_boolean_jit_compile_as_keras_does():
    from seq2seq_keras.training import TrainConfig

    config = TrainConfig()
    assert (config.precision, config.jit_compile) == ("auto", "auto")
    assert TrainConfig(jit_compile=True).jit_compile == "on" and TrainConfig(jit_compile=False).jit_compile == "off"
    assert TrainConfig.from_json(TrainConfig(jit_compile=False).to_json()).jit_compile == "off"
    assert dataclasses.replace(config, jit_compile=True).jit_compile == "on"


def test_train_flags_for_the_options():
    from seq2seq_keras.cli.commands import build_parser
    from seq2seq_keras.cli.flags import train_config_from_args as _train_config_from_args

    def parse(*flags):
        return _train_config_from_args(build_parser().parse_args(["train", "--out", "x", *flags]))

    assert (parse().precision, parse().jit_compile) == ("auto", "auto")
    assert parse("--jit-compile").jit_compile == "on"  # the old bare flag still means on
    assert parse("--jit-compile", "off").jit_compile == "off"
    assert parse("--precision", "mixed_bfloat16").precision == "mixed_bfloat16"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--out", "x", "--precision", "float16"])


def test_detect_machine_reads_another_machines_cpuinfo_from_the_environment(tmp_path):
    """``SEQ2SEQ_KERAS_CPUINFO`` stands in for /proc/cpuinfo: the suite runs as on an AMX Xeon on any CPU."""
    from pathlib import Path

    shipped = Path(__file__).parents[1] / "fixtures" / "cpuinfo-sapphire-rapids"
    assert parse_cpu_flags(shipped.read_text()) == parse_cpu_flags(SAPPHIRE_RAPIDS)
    machine = detect_machine(environ={"SEQ2SEQ_KERAS_CPUINFO": str(shipped)})
    assert machine.cpu_bfloat16 == ("amx_bf16",)
    assert resolve_options("auto", "auto", machine, SHORT).precision == "mixed_bfloat16"
    assert detect_machine(environ={"SEQ2SEQ_KERAS_CPUINFO": str(tmp_path / "missing")}).cpu_flags == frozenset()
