"""``make bench``: training speed, quality, serving and memory against the TensorFlow tutorial.

Usage::

    python -m benchmarks.run                         # everything, 15-minute quality budget per model
    python -m benchmarks.run --budget-minutes 3      # shorter quality runs
    python -m benchmarks.run --quick                 # a few minutes: 3-4 speed rows, 1-minute budgets
    python -m benchmarks.run --parts speed           # only the training-speed table
    python -m benchmarks.run --quick --serving-xla feed   # XLA serving rows for the default model only
    python -m benchmarks.run --parts levers --budget-minutes 6   # training levers vs their baseline

Every part runs in its own Python process (so that peak RSS figures are per model
and a crash in one part leaves the others): the training-speed table (all rows in
one process, interleaved, with the float32 matmul peak measured in that same
process), thread settings (one process per setting), one training run per model
for the quality budget (tutorial reference, ours with input feeding, ours in fast
mode, our Transformer; ours use the fastest configuration the speed part measured for each), one
process measuring all exported SavedModels interleaved, one per SavedModel for
serving memory, and one scoring the quality part's models on the robustness set
(names/numbers swapped for unseen ones, long inputs; :mod:`benchmarks.robustness`), and, asked
for (``--parts ...,levers``), one quality run per training lever (:data:`LEVERS`). The table is printed and ``docs/benchmarks.md`` (the docs site's
benchmarks page, its plot beside it) rewritten (``--output``); ``--json`` also keeps the raw results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The docs site's benchmarks page (mkdocs.yml lists it); the quality plot goes beside it.
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
PARTS = ("speed", "threads", "quality", "serving", "robustness", "levers")
#: What runs without --parts: everything but the training levers (one more quality run per lever).
DEFAULT_PARTS = ("speed", "threads", "quality", "serving", "robustness")
#: The "levers" part: the default input-feeding model (its quality run is the baseline) with one
#: training lever each, as ``seq2seq-keras train`` sets it (TrainConfig's fields of these names).
LEVERS = {
    "warmup": (
        "learning rate warmed up linearly over 400 steps to 2x the base rate, then inverse-sqrt decay",
        dict(peak_lr_factor=2.0, warmup_steps=400, lr_decay="inverse-sqrt"),
    ),
    "smoothing": ("label smoothing 0.1", dict(label_smoothing=0.1)),
    "no-token-cap": (
        "no token cap on batches (the default caps them at 1024 tokens: long-sentence batches get fewer pairs)",
        dict(batch_tokens=None),
    ),
}
#: Our models, one quality run each (the tutorial reference is the fourth).
OUR_FAMILIES = ("feed", "fast", "transformer")
#: The tutorial's published figures, for the targets table (absolute numbers drift between machines).
TUTORIAL_RSS_MB = 1.35 * 1000  # "peak RSS 1.35 GB"
THREAD_SETTINGS = ((1, 1), (2, 1), (1, 2), (2, 2))


# =========================================================================== arguments
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark seq2seq_keras against an in-run re-implementation of TensorFlow's NMT-with-attention "
        "tutorial: training speed lever by lever, BLEU/chrF after a wall-clock budget, SavedModel serving "
        "latency and throughput, peak memory. Prints a table and rewrites docs/benchmarks.md.",
    )
    p.add_argument(
        "--data",
        default="spa-eng",
        help="corpus (default: %(default)s, from ../shared/data; falls back to builtin-ko-en with a notice)",
    )
    p.add_argument("--limit", type=int, default=None, help="use only the first N pairs of the corpus")
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="wall-clock training budget per model for the quality part (default 15, --quick 1)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a few minutes: fewer speed rows, short windows, 1-minute budgets, 500 test sentences, no thread rows",
    )
    p.add_argument(
        "--parts",
        default=None,
        help=f"comma-separated subset of {','.join(PARTS)} (default: all but levers; --quick: also not threads); "
        "levers without quality trains only its baseline (ours with input feeding) and the reference",
    )
    p.add_argument("--embedding-dim", type=int, default=128)
    p.add_argument("--units", type=int, default=256, help="the tutorial's GRU width (default: %(default)s)")
    p.add_argument(
        "--encoder-units",
        type=int,
        default=None,
        help="our encoder units per direction (default: units/2, so that our encoder output and decoder are --units wide like the tutorial's)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--vocabulary",
        type=int,
        default=5000,
        help="vocabulary cap per language, for every model (default: %(default)s, the tutorial's)",
    )
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument(
        "--num-layers",
        type=int,
        default=2,
        help="the Transformer row: encoder and decoder layers, each (default: %(default)s)",
    )
    p.add_argument(
        "--num-heads", type=int, default=4, help="the Transformer row: attention heads (default: %(default)s)"
    )
    p.add_argument(
        "--model-dim",
        type=int,
        default=192,
        help="the Transformer row: width (default: %(default)s, about the GRU default's parameters)",
    )
    p.add_argument(
        "--ff-dim", type=int, default=768, help="the Transformer row: feed-forward width (default: %(default)s)"
    )
    p.add_argument(
        "--mixed-precision",
        choices=("auto", "on", "off"),
        default="auto",
        help="add mixed_bfloat16 rows (auto: when the CPU has AMX/AVX512-BF16)",
    )
    p.add_argument(
        "--speed-xla",
        choices=("on", "off"),
        default="on",
        help="the XLA rows of the training-speed table (off: a shorter table without XLA compiles; the quality runs still train with what auto picks)",
    )
    p.add_argument("--steps", type=int, default=None, help="training steps per timed window (default 10, --quick 5)")
    p.add_argument(
        "--repeats", type=int, default=None, help="timed windows per row, after warm-up (default 5, --quick 3)"
    )
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps per row before timing (default 5)")
    p.add_argument(
        "--xla-warmup",
        type=int,
        default=40,
        help="warm-up steps of XLA rows: one compilation per new batch shape (default: %(default)s)",
    )
    p.add_argument(
        "--eval-limit", type=int, default=None, help="score only the first N test sentences (default: all; --quick 500)"
    )
    p.add_argument(
        "--serving-sentences",
        type=int,
        default=None,
        help="single-sentence calls per SavedModel (default 200, --quick 40)",
    )
    p.add_argument(
        "--serving-xla",
        default=None,
        help=f"which of our models the serving part also exports with XLA for its *_xla rows (XLA compilation per input shape is the slowest part of serving): comma-separated subset of {','.join(OUR_FAMILIES)}, or none (default: all)",
    )
    p.add_argument(
        "--output",
        default=str(DEFAULT_OUTPUT),
        help="report to rewrite, the quality plot written beside it (default: docs/benchmarks.md)",
    )
    p.add_argument("--no-write", action="store_true", help="print the report, do not rewrite --output")
    p.add_argument("--json", default=None, help="also write the raw results to this JSON file")
    p.add_argument(
        "--workdir",
        default=None,
        help="folder for SavedModels and child results (default: a temporary folder, removed at the end)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--note", default=None, help="a remark printed at the top of the report (e.g. why a run is partial)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-spec", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    return p


@dataclasses.dataclass
class Settings:
    data: str
    limit: int | None
    budget_s: float
    quick: bool
    parts: tuple[str, ...]
    size: dict
    bfloat16: bool | None  # None: decide from the CPU
    speed_xla: bool
    steps: int
    repeats: int
    warmup: int
    xla_warmup: int
    eval_limit: int | None
    serving_sentences: int
    serving_xla: tuple[str, ...]
    seed: int


def settings_from_args(args) -> Settings:
    quick = args.quick
    parts = (
        tuple(p.strip() for p in args.parts.split(","))
        if args.parts
        else (tuple(p for p in DEFAULT_PARTS if p != "threads") if quick else DEFAULT_PARTS)
    )
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"--parts: unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}.")
    serving_xla = (
        OUR_FAMILIES
        if args.serving_xla is None
        else tuple(f.strip() for f in args.serving_xla.split(",") if f.strip() and f.strip() != "none")
    )
    unknown = set(serving_xla) - set(OUR_FAMILIES)
    if unknown:
        raise SystemExit(
            f"--serving-xla: unknown model(s) {sorted(unknown)}; choose from {', '.join(OUR_FAMILIES)} or none."
        )
    budget = args.budget_minutes if args.budget_minutes is not None else (1.0 if quick else 15.0)
    if budget <= 0:
        raise SystemExit(f"--budget-minutes must be positive, got {budget}.")
    return Settings(
        data=args.data,
        limit=args.limit,
        budget_s=60.0 * budget,
        quick=quick,
        parts=parts,
        size=dict(
            embedding_dim=args.embedding_dim,
            units=args.units,
            encoder_units=args.encoder_units,
            batch_size=args.batch_size,
            vocabulary=args.vocabulary,
            learning_rate=args.learning_rate,
            num_layers=args.num_layers,
            num_heads=args.num_heads,
            model_dim=args.model_dim,
            ff_dim=args.ff_dim,
        ),
        bfloat16={"auto": None, "on": True, "off": False}[args.mixed_precision],
        speed_xla=args.speed_xla == "on",
        steps=args.steps or (5 if quick else 10),
        repeats=args.repeats or (3 if quick else 5),
        warmup=args.warmup or 5,
        xla_warmup=args.xla_warmup,
        eval_limit=args.eval_limit if args.eval_limit is not None else (500 if quick else None),
        serving_sentences=args.serving_sentences or (40 if quick else 200),
        serving_xla=serving_xla,
        seed=args.seed,
    )


# =========================================================================== children
def _model_size(settings: Settings):
    from .training_speed import ModelSize

    return ModelSize(**settings.size)


def _bfloat16(settings: Settings) -> bool:
    from .measure import cpu_has_bfloat16_matmul

    return cpu_has_bfloat16_matmul() if settings.bfloat16 is None else settings.bfloat16


def child_speed(settings: Settings, spec: dict) -> dict:
    """The training-speed table (or, with ``threads``, its three headline rows under a thread setting)."""
    import tensorflow as tf

    threads = spec.get("threads")
    if threads:  # must happen before TensorFlow creates its thread pools
        tf.config.threading.set_intra_op_parallelism_threads(threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(threads[1])
    from .corpus import load_bench_data
    from .measure import cpu_has_bfloat16_matmul, machine_description, matmul_flops_per_second
    from .training_speed import ladder, measure_speed

    data = load_bench_data(settings.data, settings.limit)
    result = {
        "machine": machine_description(),
        "data": data.name,
        "notice": data.notice,
        "train_pairs": len(data.train),
        "test_pairs": len(data.test),
    }
    result["peak_flops_float32"] = matmul_flops_per_second(2048, "float32")
    if cpu_has_bfloat16_matmul():
        result["peak_flops_bfloat16"] = matmul_flops_per_second(2048, "bfloat16")
    if threads:  # the reference and both float32 defaults
        variants = [v for v in ladder(quick=True, bfloat16=False, xla=False) if v.family != "transformer"]
    else:
        variants = [
            v
            for v in ladder(quick=settings.quick, bfloat16=_bfloat16(settings))
            if settings.speed_xla or not v.jit_compile
        ]
    rows = measure_speed(
        variants,
        data,
        _model_size(settings),
        steps=settings.steps,
        repeats=settings.repeats,
        warmup=settings.warmup,
        xla_warmup=settings.xla_warmup,
        peak_flops=result["peak_flops_float32"],
        seed=settings.seed,
        progress=lambda m: print(f"[speed{' ' + str(threads) if threads else ''}] {m}", flush=True),
    )
    result["rows"] = [r.to_dict() for r in rows]
    # The matmul once more after the step loops: the machine drifts (other processes, clocks);
    # efficiencies use the better of the two medians, i.e. the machine's demonstrated peak.
    result["peak_flops_float32_after"] = matmul_flops_per_second(2048, "float32")
    peak = max(result["peak_flops_float32"], result["peak_flops_float32_after"])
    for row in result["rows"]:
        row["efficiency"] = row["flops_per_s"] / peak
    return result


def child_quality(settings: Settings, spec: dict) -> dict:
    from .corpus import load_bench_data
    from .quality import train_and_evaluate
    from .training_speed import TUTORIAL, default_variant

    data = load_bench_data(settings.data, settings.limit)
    options, name, lever = None, spec["family"], spec.get("lever")
    if spec["family"] == "tutorial":
        variant = TUTORIAL
    else:  # what the package's "auto" options choose on this machine for a run of the budget's length
        variant, options = default_variant(spec["family"], spec["planned_steps"])
        print(f"  [{spec['family']}] {options.describe()}", flush=True)
    if lever:
        label, fields = LEVERS[lever]
        fields = dict(fields)
        if "peak_lr_factor" in fields:
            fields["peak_lr"] = fields.pop("peak_lr_factor") * settings.size["learning_rate"]
        name = f"{spec['family']}+{lever}"
        variant = dataclasses.replace(
            variant, key=f"{variant.key}+{lever}", label=f"{variant.label}; {label}", **fields
        )
    result = train_and_evaluate(
        name,
        variant,
        data,
        _model_size(settings),
        settings.budget_s,
        spec["workdir"],
        eval_limit=settings.eval_limit,
        seed=settings.seed,
        export=not lever,  # the serving part measures the quality part's models only
    )
    result["lever"] = lever
    result["planned_steps"] = spec.get("planned_steps")
    result["options"] = options.describe() if options else None
    return result


def _test_sentences(settings: Settings) -> list[str]:
    from .corpus import load_bench_data

    return list(load_bench_data(settings.data, settings.limit).test.source)


def child_serving(settings: Settings, spec: dict) -> dict:
    from .serving import compile_log_environment, serving_speed

    compile_log_environment()  # before TensorFlow starts: XLA compilations are counted from its log

    return serving_speed(
        spec["models"],
        _test_sentences(settings),
        single=settings.serving_sentences,
        batches=max(3, settings.serving_sentences // 20),
    )


def child_serving_rss(settings: Settings, spec: dict) -> dict:
    from .serving import serving_rss

    return serving_rss(spec["savedmodel"], spec["kind"], _test_sentences(settings), signature=spec.get("signature"))


def child_serving_export(settings: Settings, spec: dict) -> dict:
    from .serving import export_for_serving

    return export_for_serving(spec["models"], spec["workdir"], families=settings.serving_xla)


def child_parity(settings: Settings, spec: dict) -> dict:
    """Every signature of ours (plain and XLA exports) through TF Serving's loader against ``model.translate``."""
    from seq2seq_keras.serving.signatures import XLA_SIGNATURES
    from seq2seq_keras.training import load_model

    from .parity import check_parity
    from .serving import report_name

    sentences = _test_sentences(settings)[:64]
    out, models = {}, {}
    for name, spec_ in spec["models"].items():
        keras_model = spec["models"].get(report_name(name), {}).get("keras_model")
        if not spec_.get("kind", "").startswith("seq2seq_keras") or not keras_model:
            continue
        if keras_model not in models:
            models[keras_model] = load_model(keras_model)
        model = models[keras_model]
        only = XLA_SIGNATURES if spec_["kind"] == "seq2seq_keras_xla" else None  # its plain ones are checked above
        out[name] = check_parity(spec_["savedmodel"], model, sentences, signatures=only)
    return out


def child_serving_load(settings: Settings, spec: dict) -> dict:
    from .serving_load import load_test

    return load_test(spec["models"], _test_sentences(settings), requests=max(64, settings.serving_sentences * 8 // 5))


def child_serving_breakdown(settings: Settings, spec: dict) -> dict:
    from .serving_breakdown import serving_breakdown

    return serving_breakdown(spec["models"], _test_sentences(settings))


def child_robustness(settings: Settings, spec: dict) -> dict:
    from .corpus import load_bench_data
    from .robustness import robustness

    data = load_bench_data(settings.data, settings.limit)
    sizes = dict(swapped=60, longest=30, concatenations=30) if settings.quick else {}
    return robustness(spec["models"], data, seed=settings.seed, **sizes)


CHILDREN = {
    "speed": child_speed,
    "quality": child_quality,
    "serving": child_serving,
    "serving-rss": child_serving_rss,
    "serving-export": child_serving_export,
    "parity": child_parity,
    "serving-breakdown": child_serving_breakdown,
    "serving-load": child_serving_load,
    "robustness": child_robustness,
}


def run_child(kind: str, argv: list[str], spec: dict, workdir: Path, label: str) -> dict | None:
    """Run one part in a fresh Python process; its result, or None (with the error printed) if it failed."""
    spec_path = workdir / f"{label}.spec.json"
    out_path = workdir / f"{label}.result.json"
    spec_path.write_text(json.dumps(spec))
    command = [
        sys.executable,
        "-m",
        "benchmarks.run",
        *argv,
        "--child",
        kind,
        "--child-spec",
        str(spec_path),
        "--child-out",
        str(out_path),
    ]
    print(f"== {label}", flush=True)
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO_ROOT)
    if completed.returncode != 0 or not out_path.exists():
        print(f"== {label} FAILED (exit status {completed.returncode}); its rows are left out", flush=True)
        return None
    print(f"== {label} done in {time.perf_counter() - start:.0f} s", flush=True)
    return json.loads(out_path.read_text())


def _parent_argv(argv: list[str]) -> list[str]:
    """The user's arguments minus the ones the parent handles itself."""
    drop_with_value = {"--output", "--json", "--workdir", "--note", "--child", "--child-spec", "--child-out"}
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in drop_with_value:
            skip = "=" not in a
            continue
        if name == "--no-write":
            continue
        out.append(a)
    return out


# =========================================================================== orchestration
def run_all(settings: Settings, argv: list[str], workdir: Path) -> dict:
    child_argv = _parent_argv(argv)
    from .measure import cpu_description

    results: dict = {
        "cpu": cpu_description(),  # also when the speed part (which describes the whole machine) is left out
        "settings": dataclasses.asdict(settings),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "allocator": "TF_ONEDNN_USE_SYSTEM_ALLOCATOR="
        + os.environ.get("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "(unset: TensorFlow's oneDNN pool)"),
    }
    speed = None
    if "speed" in settings.parts:
        speed = run_child("speed", child_argv, {}, workdir, "speed")
        results["speed"] = speed
    if "threads" in settings.parts:
        results["threads"] = []
        for intra, inter in THREAD_SETTINGS:
            r = run_child("speed", child_argv, {"threads": [intra, inter]}, workdir, f"threads-{intra}-{inter}")
            if r is not None:
                results["threads"].append({"intra": intra, "inter": inter, "rows": r["rows"]})
    models = {}
    if "quality" in settings.parts or "levers" in settings.parts:
        results["quality"] = {}
        # The levers alone need only their baseline (feed) and the reference's curve (tutorial).
        families = ("tutorial", *OUR_FAMILIES) if "quality" in settings.parts else ("tutorial", "feed")
        for family in families:
            spec = {"family": family, "workdir": str(workdir), "planned_steps": _planned_steps(speed, family, settings)}
            r = run_child("quality", child_argv, spec, workdir, f"quality-{family}")
            if r is not None:
                results["quality"][family] = r
                models[family] = {"savedmodel": r["savedmodel"], "kind": r["kind"]}
                if r.get("keras_model"):
                    models[family]["keras_model"] = r["keras_model"]
    if "levers" in settings.parts:
        results["levers"] = {}
        for lever in LEVERS:
            spec = {
                "family": "feed",
                "lever": lever,
                "workdir": str(workdir),
                "planned_steps": _planned_steps(speed, "feed", settings),
            }
            r = run_child("quality", child_argv, spec, workdir, f"lever-{lever}")
            if r is not None:
                results["levers"][lever] = r
    if "serving" in settings.parts:
        if not models:
            print("== serving skipped: it measures the SavedModels the quality part exports (add 'quality' to --parts)")
        else:
            from .serving import rss_specs  # ours also exported with xla=True (serving.py), its *_xla rows

            served = (
                run_child(
                    "serving-export", child_argv, {"models": models, "workdir": str(workdir)}, workdir, "serving-export"
                )
                or models
            )
            results["parity"] = run_child("parity", child_argv, {"models": served}, workdir, "parity")
            results["serving"] = run_child("serving", child_argv, {"models": served}, workdir, "serving")
            # The plain SavedModels only: TF Serving runs the *_xla signatures only when started with XLA enabled.
            results["serving_load"] = run_child("serving-load", child_argv, {"models": models}, workdir, "serving-load")
            results["serving_breakdown"] = run_child(
                "serving-breakdown", child_argv, {"models": served}, workdir, "serving-breakdown"
            )
            results["serving_rss"], results["serving_rss_details"] = {}, {}
            for name, spec in rss_specs(served).items():
                r = run_child("serving-rss", child_argv, spec, workdir, f"serving-rss-{name}")
                if r is not None:
                    results["serving_rss_details"][name] = r
                    if spec["kind"] != "seq2seq_keras_xla":  # the memory table's column: one row per model
                        results["serving_rss"][name] = r["serving_peak_rss_mb"]
    if "robustness" in settings.parts:
        if not models:
            print("== robustness skipped: it scores the models the quality part trains (add 'quality' to --parts)")
        else:
            results["robustness"] = run_child("robustness", child_argv, {"models": models}, workdir, "robustness")
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return results


def _planned_steps(speed: dict | None, family: str, settings: Settings) -> int:
    """Steps a run of the quality budget takes at the family's float32 default speed (0 if not measured):
    what ``seq2seq-keras train`` would plan for a run that long, so the quality run gets its "auto" options."""
    rows = {r["variant"]["key"]: r for r in (speed or {}).get("rows", [])}
    steps_per_s = rows.get(family, {}).get("steps_per_s") or 0.0
    return int(settings.budget_s * steps_per_s)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    if args.child:
        spec = json.loads(Path(args.child_spec).read_text()) if args.child_spec else {}
        result = CHILDREN[args.child](settings, spec)
        Path(args.child_out).write_text(json.dumps(result, indent=1, default=str))
        return 0
    from .report import render

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="seq2seq-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        results = run_all(settings, argv, workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    results["wall_minutes"] = (time.perf_counter() - start) / 60
    results["command"] = shlex.join(["python", "-m", "benchmarks.run", *argv])
    results["note"] = args.note
    if not args.no_write and results.get("quality"):
        from .curve import write_plot

        plot = Path(args.output).with_name(Path(args.output).stem + "_bleu_vs_time.png")
        if write_plot(results["quality"], plot):
            results["curve_plot"] = plot.name  # linked from the report, which sits in the same folder
    text = render(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    if not args.no_write:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    produced = any(results.get(part) for part in ("speed", "threads", "quality", "serving"))
    return 0 if produced else 1


if __name__ == "__main__":
    sys.exit(main())
