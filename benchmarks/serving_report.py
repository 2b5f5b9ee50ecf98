"""The serving sections of docs/benchmarks.md beyond the speed table: XLA compilations, serving memory
against the reference, and where the time goes (:mod:`benchmarks.serving_breakdown`).

:func:`sections` takes the bench's raw results and returns Markdown lines; ``benchmarks/report.py``
appends them after its serving table.
"""

from __future__ import annotations

import math

#: The serving-memory target: ours no more than the reference's + 10%.
TARGET_RSS_RATIO = 1.10
NAMES = {
    "tutorial": "tutorial formulation (reference)",
    "feed": "ours, input feeding (Bahdanau)",
    "fast": "ours, fast mode (no input feeding)",
}


def _f(value, digits: int = 1, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _count(value) -> str:
    return "not counted" if value is None else str(value)


def _name(name: str) -> str:
    base = name[:-4] if name.endswith("-xla") else name
    return NAMES.get(base, base) + (", XLA export" if name.endswith("-xla") else "")


def first_calls(serving: dict) -> list[str]:
    """First-call latency of every row, and the XLA rows' compilations (warm-up / timed)."""
    rows = []
    for name, sigs in serving.items():
        for sig, m in sigs.items():
            if "first_call_ms" not in m:
                continue
            compiles = (
                f"{_count(m['xla_compilations_warmup'])} / {_count(m['xla_compilations_timed'])}"
                if "xla_compilations_warmup" in m
                else "-"
            )
            rows.append(
                [
                    _name(name),
                    f"`{sig}`",
                    _f(m["first_call_ms"], 0),
                    _f(m["latency_ms_median"], 2),
                    m.get("warmup_calls", "n/a"),
                    compiles,
                ]
            )
    if not rows:
        return []
    return [
        "## Serving: first calls and XLA compilations",
        "",
        "The first call of each signature after loading (TF Serving's path, the SavedModel's warm-up file, where "
        "it has one, replayed first as TF Serving does; the tutorial's export has none): Grappler optimises a graph at its "
        "first `Session::Run`, and an XLA signature compiles once per (batch, source-length) bucket it meets. "
        "The XLA rows' warm-up sends every input the timed calls send, so compilations land there; they are "
        "counted from TensorFlow's log (one `device_compiler` line per compilation). The two XLA signatures of a "
        "SavedModel share one compiled function: the second one compiles only buckets the first did not meet.",
        "",
        *_table(
            [
                "model",
                "signature",
                "first call ms",
                "warm median ms",
                "warm-up calls",
                "XLA compilations (warm-up / timed)",
            ],
            rows,
        ),
    ]


def memory(results: dict) -> list[str]:
    """Serving peak RSS, ours against the reference's (target: <= reference + 10%)."""
    details = results.get("serving_rss_details") or {}
    rss = {name: d["serving_peak_rss_mb"] for name, d in details.items()}
    ref = rss.get("tutorial")
    if not rss:
        return []
    rows = []
    for name, peak in rss.items():
        d = details[name]
        ratio = peak / ref if ref else None
        status = (
            "" if name == "tutorial" or ratio is None else ("**met**" if ratio <= TARGET_RSS_RATIO else "**missed**")
        )
        rows.append(
            [
                _name(name),
                f"`{d.get('signature', 'n/a')}`",
                _f(d.get("after_load_rss_mb"), 0),
                _f(peak, 0),
                _f(ratio, 2, "x"),
                status,
            ]
        )
    return [
        "## Serving memory",
        "",
        "Peak resident set size (`getrusage`), one fresh process per SavedModel: TF Serving's loader (C API), "
        "then 50 single sentences and 10 batches of 64 through the signature named. "
        f"Target: ours <= the reference's + {TARGET_RSS_RATIO - 1:.0%}.",
        "",
        *_table(["model", "signature", "after load MiB", "peak MiB", "x reference", "target"], rows),
    ]


def time_breakdown(breakdown: dict) -> list[str]:
    """The "where the time goes" table (:mod:`benchmarks.serving_breakdown`)."""
    if not breakdown:
        return []
    rows, ops = [], []
    for name, b in breakdown.items():
        for batch in sorted((k for k in b if k.isdigit()), key=int):
            r = b[batch]
            s = r["stages_ms"]
            rows.append(
                [
                    _name(name),
                    batch,
                    _f(r["latency_ms"], 2),
                    _f(r["overhead_ms"], 2),
                    _f(s["text processing"], 2),
                    _f(s["encoder"], 2),
                    _f(s["decode loop"], 2),
                    f"{_f(r['per_step_ms'], 3)} x {r['steps']:g}",
                    _f(s["other"], 2),
                ]
            )
            ops.append(
                [
                    _name(name),
                    batch,
                    _f(r["ops_per_step"], 0),
                    _f(r.get("compute_ops_per_step"), 0),
                    _f(r["executed_ops"]["encoder"], 0),
                ]
            )
    graph_rows = [
        [
            _name(name),
            b.get("savedmodel_loop_body_ops", "n/a"),
            (b.get("graph") or {}).get("decode_loop_compute_ops", "n/a"),
            (b.get("graph") or {}).get("nodes", "n/a"),
            (b.get("graph") or {}).get("fused_kernels", "n/a"),
            (b.get("graph") or {}).get("constant_folding_nodes", "n/a"),
        ]
        for name, b in breakdown.items()
    ]
    return [
        "## Where the time goes",
        "",
        "One signature per model (the comparison row) through TF Serving's loader. *Latency*: median of untraced "
        "calls. *Call overhead*: median of calls feeding the same request but fetching a constant (conversion, "
        "C API, executor setup). The rest, latency - overhead, is shared out over the stages by their op time in "
        "traced calls (`RunOptions(FULL_TRACE)` step stats) of a second session with one inter-op thread, where "
        "ops run one at a time; stages by the executed nodes' names (`/encoder`; the outermost `while`: decode "
        "loop; string, ragged and lookup ops: text processing; the rest, e.g. the decoder's start and the "
        "outputs: other). Decode steps: the loop's `LoopCond` runs. These are trained models whose batches "
        "may run to the length limit.",
        "",
        *_table(
            [
                "model",
                "batch",
                "latency ms",
                "call overhead ms",
                "text processing ms",
                "encoder ms",
                "decode loop ms",
                "per step ms x steps",
                "other ms",
            ],
            rows,
        ),
        "Ops: executed per decode step (all, and without control-flow plumbing: Enter/Merge/Switch/NextIteration/"
        "Identity), and executed by the encoder per call.",
        "",
        *_table(["model", "batch", "ops per step", "compute ops per step", "encoder ops"], ops),
        "Grappler (TF Serving runs TensorFlow's default meta-optimizer at a graph's first `Session::Run`; the C "
        "API loader does the same): the decode-loop body's ops in the SavedModel's function library (before "
        "Grappler, `Const` excluded, called functions included) against the loop's compute ops in the graph the "
        "session ran (`partition_graphs`, after Grappler and lowering), the whole graph's nodes, and Grappler's "
        "visible work: fused kernels (`_Fused*`, `_Mkl*Fused*`) and `ConstantFolding/` nodes.",
        "",
        *_table(
            [
                "model",
                "loop body ops (SavedModel)",
                "loop compute ops (after Grappler)",
                "graph nodes run",
                "fused kernels",
                "constant-folding nodes",
            ],
            graph_rows,
        ),
    ]


def load_section(load: dict, serving: dict) -> list[str]:
    """Concurrent clients per model (:mod:`benchmarks.serving_load`) and what batching could add."""
    if not load:
        return []
    from .serving_load import batching_headroom

    ref = {level["clients"]: level for level in (load.get("tutorial") or {}).get("levels", [])}
    rows = []
    for name, entry in load.items():
        for level in entry["levels"]:
            base = ref.get(level["clients"])
            ratio = level["sentences_per_s"] / base["sentences_per_s"] if base and name != "tutorial" else None
            rows.append(
                [
                    _name(name),
                    level["clients"],
                    _f(level["sentences_per_s"], 0),
                    "" if ratio is None else f"{ratio:.2f}x",
                    _f(level["latency_ms_p50"], 2),
                    _f(level["latency_ms_p99"], 2),
                    level["errors"] or "",
                ]
            )
    headroom = batching_headroom(load, serving)
    batching = [
        f"- {_name(name)}: {_f(h['concurrent'], 0)} sentences/s at its busiest level, {_f(h['batched'], 0)} "
        f"in batches of 64 ({_f(h['gain'], 1, 'x')})"
        for name, h in headroom.items()
        if h["gain"] is not None
    ]
    signature = next(iter(load.values()))["signature"]
    return [
        "## Serving under load: concurrent clients",
        "",
        f"One SavedModel loaded once by TF Serving's loader (warm-up file replayed), `{signature}`; n client "
        "threads share its session as TF Serving's request threads do, each sending one-sentence requests back to "
        "back, all started together; the models take turns level by level. Sentences/s over the level's wall time; "
        "latency per request.",
        "",
        *_table(["model", "clients", "sentences/s", "x tutorial", "p50 ms", "p99 ms", "errors"], rows),
        "What server-side batching (`saved_models/batching_parameters.txt`, `serve.sh --batching`) could add: "
        "merged into batches of 64, concurrent one-sentence requests would be served at the batch-64 rate of the "
        "speed table instead of the busiest level's, at the cost of up to `batch_timeout_micros` of waiting:",
        "",
        *(batching or ["- not measured (no batch-64 figure)"]),
        "",
    ]


def sections(results: dict) -> list[str]:
    """All the serving sections of this module, as Markdown lines (empty when nothing was measured)."""
    return (
        first_calls(results.get("serving") or {})
        + load_section(results.get("serving_load") or {}, results.get("serving") or {})
        + memory(results)
        + time_breakdown(results.get("serving_breakdown") or {})
    )
