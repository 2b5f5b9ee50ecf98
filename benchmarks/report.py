"""Turning the benchmark's raw results into docs/benchmarks.md: targets first, then every table."""

from __future__ import annotations

import math

from .curve import time_to_quality
from .serving_report import TARGET_RSS_RATIO
from .serving_report import sections as serving_sections

#: The targets (ratios against the in-run tutorial reference, measured the same run).
#: Training: with the options the package chooses by default on this machine.
TARGET_FEED_RATIO = 3.0
TARGET_FAST_RATIO = 4.0
TARGET_EFFICIENCY = 0.5
TARGET_TIME_TO_QUALITY = 1 / 3  # of the budget: the reference's final BLEU in <= 5 of 15 minutes
TARGET_BLEU_LEAD = 8.0  # test BLEU points ahead of the reference after the same budget
#: Serving, the default model (input feeding, Bahdanau) through TF Serving's loader.
TARGET_PLAIN_LATENCY_RATIO = 0.5
TARGET_PLAIN_THROUGHPUT_RATIO = 2.0
TARGET_LATENCY_RATIO = 0.33
TARGET_THROUGHPUT_RATIO = 3.0
TARGET_BEAM_RATIO = 3.0
#: Robustness.
TARGET_COPY_RATE = 0.9
TARGET_REPETITION = 0.05
FAMILY_NAMES = {
    "tutorial": "tutorial formulation (reference)",
    "feed": "ours, input feeding (Bahdanau)",
    "fast": "ours, fast mode (no input feeding)",
    "transformer": "ours, Transformer",
}


def _f(value, digits: int = 1, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _speed_rows(results: dict, family: str | None = None, deployable: bool = True) -> list[dict]:
    rows = (results.get("speed") or {}).get("rows", [])
    return [
        r
        for r in rows
        if (family is None or r["variant"]["family"] == family) and not (deployable and r["variant"]["stepwise"])
    ]


def _best(rows: list[dict], key: str) -> dict | None:
    rows = [r for r in rows if r.get(key) is not None and not math.isnan(r[key])]
    return max(rows, key=lambda r: r[key]) if rows else None


def _status(met) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[met]


def targets(results: dict) -> list[dict]:
    """Each target: what was measured and whether it is met (None: not measured)."""
    out = []

    def add(name, target, measured, met):
        out.append({"target": name, "goal": target, "measured": measured, "met": met})

    _training_targets(results, add)
    _serving_targets(results, add)
    _robustness_targets(results, add)
    return out


def _default_row(results: dict, family: str) -> dict | None:
    """The speed row of the configuration the quality run chose by default (``options``), if measured."""
    key = ((results.get("quality") or {}).get(family) or {}).get("variant", {}).get("key", family)
    return next((r for r in _speed_rows(results, family) if r["variant"]["key"] == key), None)


def _training_targets(results: dict, add) -> None:
    quality = results.get("quality") or {}
    feed = quality.get("feed") or {}
    best = _best(_speed_rows(results, "feed"), "pairs_per_s")
    chosen = _default_row(results, "feed")
    if feed.get("options") and best and chosen:
        add(
            "default options (feed): the fastest measured configuration for this machine and run length",
            "chosen row within 5% of the fastest row",
            f"`{chosen['variant']['key']}` {chosen['ratio']:.2f}x vs fastest "
            f"`{best['variant']['key']}` {best['ratio']:.2f}x ({feed['options']})",
            chosen["pairs_per_s"] >= 0.95 * best["pairs_per_s"],
        )
    for family, goal in (("feed", TARGET_FEED_RATIO), ("fast", TARGET_FAST_RATIO)):
        row = _default_row(results, family)
        plain = next((r for r in _speed_rows(results, family) if r["variant"]["key"] == family), None)
        text = (
            "n/a"
            if row is None
            else f"{row['ratio']:.2f}x (`{row['variant']['key']}`)"
            + (f"; float32 without XLA {plain['ratio']:.2f}x" if plain is not None and plain is not row else "")
        )
        add(
            f"training pairs/s, {FAMILY_NAMES[family]}, default options",
            f">= {goal:g}x tutorial",
            text,
            None if row is None else row["ratio"] >= goal,
        )
    row = _default_row(results, "fast")
    add(
        "model FLOP/s / float32 matmul FLOP/s, fast mode, default options",
        f">= {TARGET_EFFICIENCY:.0%}",
        "n/a" if row is None else f"{row['efficiency']:.1%} (`{row['variant']['key']}`)",
        None if row is None else row["efficiency"] >= TARGET_EFFICIENCY,
    )
    budget_min = results.get("settings", {}).get("budget_s", 0) / 60
    reached = time_to_quality(quality)
    if "feed" in reached:
        seconds = reached["feed"]
        add(
            "time to the reference's end-of-budget validation BLEU, ours (feed, default options)",
            f"<= {TARGET_TIME_TO_QUALITY * budget_min:.1f} min ({TARGET_TIME_TO_QUALITY:.2g} of the budget)",
            f"{'never' if seconds is None else f'{seconds / 60:.1f} min'} (reference: BLEU "
            f"{reached['reference_bleu']:.1f} after {reached['reference_seconds'] / 60:.1f} min)",
            seconds is not None and seconds <= TARGET_TIME_TO_QUALITY * 60 * budget_min,
        )
    else:
        add("time to the reference's end-of-budget validation BLEU", "", "n/a (no curves)", None)
    ref = (quality.get("tutorial") or {}).get("bleu")
    if feed.get("bleu") is not None and ref is not None:
        lead = feed["bleu"] - ref
        add(
            f"test BLEU after the same {budget_min:.0f} minutes, ours (feed) - reference",
            f">= {TARGET_BLEU_LEAD:g} points",
            f"{lead:+.1f} ({feed['bleu']:.1f} vs {ref:.1f}; chrF "
            f"{feed['chrf']:.1f} vs {quality['tutorial']['chrf']:.1f})",
            lead >= TARGET_BLEU_LEAD,
        )
    tut_rss = (quality.get("tutorial") or {}).get("train_peak_rss_mb")
    for family in ("feed", "fast", "transformer"):
        if family in quality and tut_rss:
            rss = quality[family]["train_peak_rss_mb"]
            add(
                f"training peak RSS, {FAMILY_NAMES[family]} (`{quality[family]['variant']['key']}`)",
                "<= the reference's",
                f"{rss:,.0f} MiB vs {tut_rss:,.0f} ({rss / tut_rss:.2f}x)",
                rss <= tut_rss,
            )


def _serving_targets(results: dict, add) -> None:
    serving = results.get("serving") or {}
    ref = (serving.get("tutorial") or {}).get("serving_default")
    ours = serving.get("feed") or {}
    if not ref or not ours:
        add("serving (feed) against the reference", "", "n/a", None)
        return

    def ratios(m):
        return (
            m["latency_ms_median"] / ref["latency_ms_median"],
            m["latency_ms_p90"] / ref["latency_ms_p90"],
            (m.get("batch_sentences_per_s") or float("nan")) / ref["batch_sentences_per_s"],
        )

    plain = ours.get("serving_default")
    if plain:
        med, p90, thr = ratios(plain)
        add(
            "serving latency, 1 sentence, feed, plain `serving_default`",
            f"median and p90 <= {TARGET_PLAIN_LATENCY_RATIO:g}x tutorial",
            f"median {med:.2f}x, p90 {p90:.2f}x",
            med <= TARGET_PLAIN_LATENCY_RATIO and p90 <= TARGET_PLAIN_LATENCY_RATIO,
        )
        add(
            "serving sentences/s at batch 64, feed, plain `serving_default`",
            f">= {TARGET_PLAIN_THROUGHPUT_RATIO:g}x tutorial",
            f"{thr:.2f}x",
            thr >= TARGET_PLAIN_THROUGHPUT_RATIO,
        )
    greedy = {sig: m for sig, m in ours.items() if sig != "beam_search"}
    fastest = min(greedy, key=lambda sig: greedy[sig]["latency_ms_median"])
    med, p90, _ = ratios(greedy[fastest])
    add(
        f"serving latency, 1 sentence, feed, fastest option (`{fastest}`)",
        f"median and p90 <= {TARGET_LATENCY_RATIO:g}x tutorial",
        f"median {med:.2f}x, p90 {p90:.2f}x",
        med <= TARGET_LATENCY_RATIO and p90 <= TARGET_LATENCY_RATIO,
    )
    best_thr = max(greedy, key=lambda sig: greedy[sig].get("batch_sentences_per_s") or 0)
    thr = ratios(greedy[best_thr])[2]
    add(
        f"serving sentences/s at batch 64, feed, fastest option (`{best_thr}`)",
        f">= {TARGET_THROUGHPUT_RATIO:g}x tutorial",
        f"{thr:.2f}x",
        thr >= TARGET_THROUGHPUT_RATIO,
    )
    if plain and plain.get("first_call_ms") is not None and ref.get("first_call_ms") is not None:
        add(
            "first call after load, feed, plain `serving_default` (TF Serving's path: its warm-up file replayed first)",
            "<= the tutorial's",
            f"{plain['first_call_ms']:,.0f} ms vs {ref['first_call_ms']:,.0f}",
            plain["first_call_ms"] <= ref["first_call_ms"],
        )
    if plain and ours.get("beam_search"):
        r = ours["beam_search"]["latency_ms_median"] / plain["latency_ms_median"]
        add("beam 4 latency / greedy latency, feed", f"<= {TARGET_BEAM_RATIO:g}x", f"{r:.2f}x", r <= TARGET_BEAM_RATIO)
    details = results.get("serving_rss_details") or {}
    ref_rss = (details.get("tutorial") or {}).get("serving_peak_rss_mb")
    for name in ("feed", "feed-xla"):
        if ref_rss and name in details:
            r = details[name]["serving_peak_rss_mb"] / ref_rss
            add(
                f"serving peak RSS, {name} (`{details[name].get('signature')}`)",
                f"<= {TARGET_RSS_RATIO:.2f}x the reference's",
                f"{r:.2f}x ({details[name]['serving_peak_rss_mb']:,.0f} vs {ref_rss:,.0f} MiB)",
                r <= TARGET_RSS_RATIO,
            )
    parity = results.get("parity") or {}
    if parity:
        checked = [(name, sig, p) for name, sigs in parity.items() for sig, p in sigs.items()]
        wrong = [f"{name} `{sig}`: {p['problems'][0]}" for name, sig, p in checked if p["problems"]]
        worst = max((p["max_attention_difference"] for _, _, p in checked), default=0.0)
        add(
            "outputs through TF Serving's loader = the Python API, every signature of ours",
            "tokens identical, attention within 1e-5",
            f"{len(checked)} signatures, {checked[0][2]['sentences'] if checked else 0} sentences each; "
            + (f"{len(wrong)} differ: {wrong[0]}" if wrong else f"identical, max attention difference {worst:.2g}"),
            not wrong,
        )


def _robustness_targets(results: dict, add) -> None:
    rows = (results.get("robustness") or {}).get("rows") or {}
    ref = next((r for label, r in rows.items() if label.startswith("tutorial")), None)
    ours = rows.get("ours (feed), greedy")
    if ours:
        copied = ours["swapped"]["copy_rate"]
        add(
            "names/numbers copied verbatim (swapped set), ours greedy",
            f">= {TARGET_COPY_RATE:.0%}",
            f"{_pct(copied)} (tutorial {_pct(ref and ref['swapped']['copy_rate'])})",
            None if copied is None else copied >= TARGET_COPY_RATE,
        )
        off = rows.get("ours (feed), greedy, no [UNK] replacement")
        add(
            "[UNK] in the output, replacement on",
            "0%",
            f"{_pct(ours['unk_rate'])} (off: {_pct(off and off['unk_rate'])})",
            ours["unk_rate"] == 0,
        )
        rep, ref_rep = ours["long"]["repetition_rate"], ref and ref["long"]["repetition_rate"]
        add(
            "repetition rate on long inputs, ours greedy",
            f"<= tutorial and <= {TARGET_REPETITION:.0%}",
            f"{_pct(rep)} (tutorial {_pct(ref_rep)})",
            None if rep is None else rep <= TARGET_REPETITION and (ref_rep is None or rep <= ref_rep),
        )
        if ref:
            add(
                "BLEU and chrF on long inputs, ours greedy",
                "ahead of the tutorial",
                f"BLEU {_f(ours['long']['bleu'])} vs {_f(ref['long']['bleu'])}, "
                f"chrF {_f(ours['long']['chrf'])} vs {_f(ref['long']['chrf'])}",
                ours["long"]["bleu"] > ref["long"]["bleu"] and ours["long"]["chrf"] > ref["long"]["chrf"],
            )


def render(results: dict) -> str:
    """docs/benchmarks.md from the results of one bench run (``benchmarks.run``'s dict, or its ``--json`` file).

    The sections, in order: the introduction, the run (command, machine, sizes, measurement),
    the targets, training speed, thread settings, quality (with the quality curve), serving,
    the serving sections of :mod:`benchmarks.serving_report`, memory and robustness. A section
    whose part did not run is left out, so a partial run renders what it has.
    """
    quality = results.get("quality") or {}
    lines = introduction(results) + run_section(results) + targets_section(results)
    lines += speed_section(results.get("speed") or {}) + threads_section(results.get("threads"))
    lines += quality_section(quality, results.get("curve_plot"))
    lines += levers_section(quality, results.get("levers") or {})
    lines += serving_table(results.get("serving") or {})
    lines += serving_sections(results)  # benchmarks/serving_report.py: XLA compilations, serving memory, time breakdown
    lines += memory_section(quality, results.get("serving_rss") or {})
    lines += robustness_section(results.get("robustness"))
    return "\n".join(lines).rstrip() + "\n"


def introduction(results: dict) -> list[str]:
    """The title, what the file is and what every ratio is measured against, the run's note and data notice."""
    speed = results.get("speed") or {}
    lines = ["# Benchmarks", ""]
    lines += [
        "Written by `make bench` (`python -m benchmarks.run`); rerun it to refresh this file. Every ratio is measured "
        "side by side, in the same run on the same machine, against `benchmarks/tutorial_reference.py`: a "
        "re-implementation of TensorFlow's older *Neural machine translation with attention* tutorial (the version "
        "with a `BahdanauAttention` layer, a `train_step` override and an exported `tf_translate`), never against a "
        "number from another day. Absolute numbers drift between machines; the targets are ratios.",
        "",
    ]
    if results.get("note"):
        lines += [f"> **Note:** {results['note']}", ""]
    if speed.get("notice"):
        lines += [f"> {speed['notice']}", ""]
    return lines


def cpu_line(cpu: dict) -> str:
    """``"AMD EPYC, 2 cores; bf16 flags: avx512_bf16 yes, amx_bf16 no, amx_tile no"``."""
    flags = cpu.get("bf16_flags") or {}
    described = "; bf16 flags: " + ", ".join(f"{f} {'yes' if on else 'no'}" for f, on in flags.items()) if flags else ""
    return f"{cpu.get('cpu', 'n/a')}, {cpu.get('cores', 'n/a')} cores{described}"


def run_section(results: dict) -> list[str]:
    """The "Run" table: command, date, machine, libraries, data, sizes, matmul peak, how speed was measured."""
    speed = results.get("speed") or {}
    machine = speed.get("machine") or {}
    settings = results.get("settings", {})
    size = settings.get("size", {})
    lines = ["## Run", ""]
    versions = machine.get("versions", {})
    run_rows = [
        ["command", f"`{results.get('command', '')}`"],
        ["date", machine.get("date", results.get("started", "n/a"))],
        ["CPU", cpu_line({**(results.get("cpu") or {}), **machine})],
        ["GPU", machine.get("gpu", "n/a")],
        ["load average at start", machine.get("load_average_at_start", "n/a")],
        ["libraries", ", ".join(f"{k} {v}" for k, v in versions.items()) or "n/a"],
        [
            "data",
            f"{speed.get('data', settings.get('data'))}: {_f(speed.get('train_pairs'), 0)} training pairs, "
            f"{_f(speed.get('test_pairs'), 0)} test pairs",
        ],
        [
            "sizes",
            f"embedding {size.get('embedding_dim')}, units {size.get('units')} (tutorial GRUs; ours: "
            f"{size.get('encoder_units') or (size.get('units', 0) // 2)} per encoder direction, decoder "
            f"{2 * (size.get('encoder_units') or (size.get('units', 0) // 2))}), batch {size.get('batch_size')}, "
            f"vocabulary {size.get('vocabulary')} per language, Adam {size.get('learning_rate')}; Transformer: "
            f"{size.get('num_layers', 'n/a')} + {size.get('num_layers', 'n/a')} layers, {size.get('num_heads', 'n/a')} "
            f"heads, width {size.get('model_dim', 'n/a')}, feed-forward {size.get('ff_dim', 'n/a')}",
        ],
        [
            "float32 matmul (2048^2), this process",
            f"{_f((speed.get('peak_flops_float32') or float('nan')) / 1e9)} GFLOP/s "
            f"(after the speed rows: {_f((speed.get('peak_flops_float32_after') or float('nan')) / 1e9)})",
        ],
    ]
    if speed.get("peak_flops_bfloat16"):
        run_rows.append(["bfloat16 matmul (2048^2)", f"{_f(speed['peak_flops_bfloat16'] / 1e9)} GFLOP/s"])
    run_rows += [
        [
            "measurement",
            f"speed: {settings.get('repeats')} interleaved windows of {settings.get('steps')} steps per row "
            f"after {settings.get('warmup')} warm-up steps ({settings.get('xla_warmup')} for XLA rows), "
            f"medians; quality budget "
            f"{_f(settings.get('budget_s', 0) / 60)} min per model",
        ],
        ["CPU tensor allocator, every process (the reference's too)", f"`{results.get('allocator', 'n/a')}`"],
        ["total wall time", f"{_f(results.get('wall_minutes'))} min"],
    ]
    lines += [_table(["", ""], run_rows), ""]
    return lines


def targets_section(results: dict) -> list[str]:
    """The "Targets" table: each target of :func:`targets`, its goal, what was measured, met or not."""
    lines = ["## Targets", ""]
    lines += [
        _table(
            ["target", "goal", "measured", "status"],
            [[t["target"], t["goal"], t["measured"], _status(t["met"])] for t in targets(results)],
        ),
        "",
    ]
    return lines


def speed_section(speed: dict) -> list[str]:
    """The training-speed table, one row per configuration of the ladder (empty without the speed part)."""
    if not speed.get("rows"):
        return []
    lines = [
        "## Training speed",
        "",
        "Rows `feed-0` ... `feed` are a ladder: each adds one lever to the row above it (our model, input "
        "feeding and Bahdanau attention throughout). The other rows change one thing from a default. "
        "`x tutorial` is the median over rounds of pairs/s divided by the reference's pairs/s in the same "
        "round. Tokens are non-padding source + target tokens in each model's own tokenisation "
        "([START]/[END] included). Model FLOPs are counted from the layer sizes and padded batch shapes "
        "(`benchmarks/measure.py`); `% peak` divides them by the better of the two float32 matmul "
        "medians above (measured before and after the rows, in the same process).",
        "",
    ]
    table = []
    for r in speed["rows"]:
        v = r["variant"]
        table.append(
            [
                f"`{v['key']}`",
                v["label"],
                _f(r["steps_per_s"], 2),
                _f(r["pairs_per_s"], 0),
                _f(r["tokens_per_s"], 0),
                f"**{r['ratio']:.2f}x**",
                _f(r["cpu_ms_per_step"], 0),
                _f(r["flops_per_s"] / 1e9),
                _f(100 * r["efficiency"], 1, "%"),
                f"{r['parameters']:,}",
                _f(r["warmup_s"], 0),
            ]
        )
    lines += [
        _table(
            [
                "row",
                "configuration",
                "steps/s",
                "pairs/s",
                "tokens/s",
                "x tutorial",
                "CPU ms/step",
                "model GFLOP/s",
                "% peak",
                "parameters",
                "warm-up s",
            ],
            table,
        ),
        "",
    ]
    return lines


def threads_section(threads: list | None) -> list[str]:
    """Pairs/s of the reference and our two defaults under each thread setting (empty without the threads part)."""
    if not threads:
        return []
    lines = [
        "## Thread settings",
        "",
        "TensorFlow's intra-op / inter-op thread pools, one process per setting (they are fixed when "
        "TensorFlow starts); each process measures the reference and our two defaults.",
        "",
    ]
    table = []
    for t in threads:
        by_key = {r["variant"]["key"]: r for r in t["rows"]}
        cells = [f"intra {t['intra']}, inter {t['inter']}"]
        for key in ("tutorial", "feed", "fast"):
            r = by_key.get(key)
            cells.append("n/a" if r is None else f"{r['pairs_per_s']:.0f} ({r['ratio']:.2f}x)")
        table.append(cells)
    lines += [_table(["threads", "tutorial pairs/s", "ours (input feeding) pairs/s", "fast mode pairs/s"], table), ""]
    return lines


def quality_section(quality: dict, plot: str | None) -> list[str]:
    """The quality table, the options each run used, the quality curve and example translations."""
    if not quality:
        return []
    lines = [
        "## Quality after the same wall-clock budget",
        "",
        "Each model trains in its own process for the budget (from the first `fit` call: tracing and "
        "compilation count), then greedy-translates the test split (SHA-1 of the English side divisible "
        "by 50). BLEU and chrF by sacrebleu, lower-cased, against the raw English references, the same for "
        "every model. Ours train with the options the package chooses by default on this machine for a run "
        "of that length (`seq2seq_keras.training.hardware`: the line below the table); the reference with the "
        "tutorial's own recipe.",
        "",
    ]
    table = []
    for family, q in quality.items():
        table.append(
            [
                FAMILY_NAMES.get(family, family),
                f"`{q['variant']['key']}`",
                f"{q['steps']:,}",
                q["epochs"],
                _f(q["train_seconds"], 0),
                _f(q["final_loss"], 3),
                f"**{q['bleu']:.1f}**",
                f"{q['chrf']:.1f}",
                q["test_sentences"],
                _f(q["train_peak_rss_mb"], 0),
            ]
        )
    lines += [
        _table(
            [
                "model",
                "configuration",
                "steps",
                "full epochs",
                "train s",
                "final loss",
                "BLEU",
                "chrF",
                "test sentences",
                "training peak RSS MiB",
            ],
            table,
        ),
        "",
    ]
    any_q = next(iter(quality.values()))
    lines += [f"Signatures: `{any_q['bleu_signature']}`, `{any_q['chrf_signature']}`.", ""]
    lines += [
        f"- {FAMILY_NAMES.get(f, f)}: `{q['options']}` (planned ~{q.get('planned_steps') or 0:,} steps)"
        for f, q in quality.items()
        if q.get("options")
    ] + [""]
    lines += curve_section(quality, plot)
    for family, q in quality.items():
        lines += [f"Examples, {FAMILY_NAMES.get(family, family)}:", ""]
        lines += [
            f"- `{e['source']}` -> `{e['hypothesis']}` (reference: `{e['reference']}`)" for e in q["examples"][:3]
        ]
        lines += [""]
    return lines


def levers_section(quality: dict, levers: dict) -> list[str]:
    """The training levers (the "levers" part): the default input-feeding model with one lever each,
    against that model's own quality run (same budget, same options) and the reference's curve."""
    if not levers:
        return []
    from .curve import time_to_reach

    base = quality.get("feed")
    reference = (quality.get("tutorial") or {}).get("curve")
    target = float(reference[-1]["bleu"]) if reference else None
    lines = [
        "## Training levers",
        "",
        "The default input-feeding model trained for the same budget with one lever switched on (the "
        "`seq2seq-keras train` option of the same name), against its own quality run above. Time to "
        "quality: when the run's validation curve first reaches the reference's end-of-budget validation "
        "BLEU"
        + (f" ({target:.1f})" if target is not None else "")
        + ". The final loss is the training loss, label-smoothed where that lever is on (not comparable "
        "across rows).",
        "",
    ]

    def row(name: str, q: dict, description: str) -> list[str]:
        reached = time_to_reach(q["curve"], target) if target is not None and q.get("curve") else None
        delta = q["bleu"] - base["bleu"] if base and q is not base else None
        return [
            name,
            description,
            f"{q['steps']:,}",
            q["epochs"],
            _f(q["final_loss"], 3),
            f"**{q['bleu']:.1f}**",
            "" if delta is None else f"{delta:+.1f}",
            f"{q['chrf']:.1f}",
            f"{q['curve'][-1]['bleu']:.1f}" if q.get("curve") else "n/a",
            "n/a"
            if target is None or not q.get("curve")
            else _f(reached / 60, 1, " min")
            if reached
            else "not reached",
            _f(q["train_peak_rss_mb"], 0),
        ]

    table = [row("(none)", base, f"`{base['variant']['key']}` (the quality run above)")] if base else []
    table += [row(f"`{name}`", q, q["variant"]["label"].split("; ")[-1]) for name, q in levers.items()]
    header = [
        "lever",
        "configuration",
        "steps",
        "full epochs",
        "final loss",
        "test BLEU",
        "BLEU vs none",
        "chrF",
        "final validation BLEU",
        "time to the reference's BLEU",
        "training peak RSS MiB",
    ]
    return lines + [_table(header, table), ""]


def serving_table(serving: dict) -> list[str]:
    """The serving speed table: every model's signatures through TF Serving's loader, and the TF2 path."""
    if not serving:
        return []
    lines = [
        "## Serving through the SavedModels",
        "",
        "All SavedModels loaded in one process by TF Serving's own loader (TensorFlow's C API: "
        "`TF_LoadSessionFromSavedModel`, then `TF_SessionRun` on the signatures' tensor names, "
        "tensorflow-text's ops registered as the server links them), interleaved sentence by sentence; "
        "the last column is the same call through `tf.saved_model.load` (the TF2 path). Greedy unless stated.",
        "",
    ]
    ref = (serving.get("tutorial") or {}).get("serving_default")
    table = []
    for name, sigs in serving.items():
        for sig, m in sigs.items():
            lat_ratio = m["latency_ms_median"] / ref["latency_ms_median"] if ref else float("nan")
            thr = m.get("batch_sentences_per_s")
            thr_ratio = thr / ref["batch_sentences_per_s"] if (ref and thr) else float("nan")
            tf2 = m.get("tf2") or {}
            table.append(
                [
                    FAMILY_NAMES.get(name, name),
                    f"`{sig}` ({m['label']})",
                    _f(m["latency_ms_median"], 2),
                    _f(m["latency_ms_p90"], 2),
                    _f(lat_ratio, 2, "x"),
                    _f(thr, 0),
                    _f(thr_ratio, 2, "x"),
                    _f(tf2.get("latency_ms_median"), 2),
                ]
            )
    lines += [
        _table(
            [
                "model",
                "signature",
                "1 sentence ms (median)",
                "p90 ms",
                "latency x tutorial",
                "sentences/s at batch 64",
                "throughput x tutorial",
                "TF2 path: 1 sentence ms",
            ],
            table,
        ),
        "",
    ]
    return lines


def memory_section(quality: dict, rss: dict) -> list[str]:
    """Training and serving peak RSS, one row per model."""
    if not (quality or rss):
        return []
    lines = ["## Memory", "", "Peak resident set size (`getrusage`), one process per model.", ""]
    table = [
        [FAMILY_NAMES.get(n, n), _f(quality.get(n, {}).get("train_peak_rss_mb"), 0), _f(rss.get(n), 0)]
        for n in dict.fromkeys([*quality, *rss])
    ]
    lines += [_table(["model", "training peak RSS MiB", "serving peak RSS MiB"], table), ""]
    return lines


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def robustness_section(robustness: dict | None) -> list[str]:
    """The robustness table (``seq2seq-keras evaluate --robustness`` on the bench's models), as Markdown lines."""
    if not robustness or not robustness.get("rows"):
        return []
    sizes = robustness["set"]
    lines = [
        "## Robustness: names, numbers, long inputs",
        "",
        f"Built from the test split (no download): {sizes['swapped']} test pairs whose names/numbers are "
        f"swapped for ones never seen in training (both sides); {sizes['longest']} longest test sentences and "
        f"{sizes['concatenation']} concatenations of 2-3 test pairs. *Copied*: outputs containing every "
        "inserted name/number verbatim. *Repetition*: long-input outputs repeating a word 3-gram that the "
        "reference does not repeat. BLEU/chrF: sacrebleu, lower-cased, raw references. Same models as the "
        "quality table (no extra training).",
        "",
    ]
    table = []
    for label, r in robustness["rows"].items():
        table.append(
            [
                label,
                _pct(r["swapped"]["copy_rate"]),
                _pct(r["unk_rate"]),
                _f(r["long"]["bleu"]),
                _f(r["long"]["chrf"]),
                _pct(r["long"]["repetition_rate"]),
                _pct(r["long"]["outputs_45_words_or_more"]),
                _f(r["swapped"]["bleu"]),
            ]
        )
    lines += [
        _table(
            [
                "system",
                "names/numbers copied",
                "[UNK] in output",
                "long BLEU",
                "long chrF",
                "repetition (long)",
                "long outputs >= 45 words",
                "swapped BLEU",
            ],
            table,
        ),
        "",
    ]
    return lines


def curve_section(quality: dict, plot: str | None) -> list[str]:
    """BLEU against training time (:mod:`benchmarks.curve`): the plot, the points, time to quality."""
    curves = {family: q["curve"] for family, q in quality.items() if q.get("curve")}
    if not curves:
        return []
    sentences = next(iter(quality.values())).get("curve_sentences", "n/a")
    lines = [
        "### BLEU against training time",
        "",
        f"Weights snapshots at fixed fractions of the budget (the clock paused while one is written), scored "
        f"after training on the first {sentences} pairs of the validation split (never the test split), greedy, "
        "sacrebleu lower-cased. Minutes are training wall-clock.",
        "",
    ]
    if plot:
        lines += [f"![validation BLEU against training minutes]({plot})", ""]
    header = ["snapshot"] + [f"{FAMILY_NAMES.get(f, f)}: BLEU @ minutes" for f in curves]
    rows = []
    for index in range(max(len(c) for c in curves.values())):
        row = [str(index + 1)]
        for curve in curves.values():
            row.append(
                f"{curve[index]['bleu']:.1f} @ {curve[index]['train_seconds'] / 60:.1f} min"
                if index < len(curve)
                else ""
            )
        rows.append(row)
    lines += [_table(header, rows), ""]
    reached = time_to_quality(quality)
    if reached:
        said = [
            f"{FAMILY_NAMES.get(f, f)}: " + ("not within the budget" if t is None else f"{t / 60:.1f} min")
            for f, t in reached.items()
            if f not in ("reference_bleu", "reference_seconds")
        ]
        lines += [
            f"Time to the reference's validation BLEU at the end of its budget ({reached['reference_bleu']:.1f} "
            f"after {reached['reference_seconds'] / 60:.1f} min), interpolated between snapshots: "
            + "; ".join(said)
            + ".",
            "",
        ]
    return lines
