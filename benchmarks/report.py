"""Turning the benchmark's raw results into BENCHMARKS.md: targets first, then every table."""

from __future__ import annotations

import math

from .serving_report import sections as serving_sections

#: The issue's targets (ratios against the in-run tutorial reference, measured the same run).
TARGET_FEED_RATIO = 3.0
TARGET_FAST_RATIO = 4.0
TARGET_BLEU = 40.0
TARGET_LATENCY_RATIO = 0.5
TARGET_THROUGHPUT_RATIO = 2.0
TARGET_BEAM_RATIO = 3.0
TARGET_TRAIN_RSS_MB = 1350.0
TARGET_EFFICIENCY = 0.5
TARGET_COPY_RATE = 0.9
TARGET_REPETITION = 0.05
FAMILY_NAMES = {"tutorial": "tutorial formulation (reference)", "feed": "ours, input feeding (Bahdanau)",
                "fast": "ours, fast mode (no input feeding)", "transformer": "ours, Transformer"}


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
    return [r for r in rows if (family is None or r["variant"]["family"] == family)
            and not (deployable and r["variant"]["stepwise"])]


def _best(rows: list[dict], key: str) -> dict | None:
    rows = [r for r in rows if r.get(key) is not None and not math.isnan(r[key])]
    return max(rows, key=lambda r: r[key]) if rows else None


def _status(met) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[met]


def targets(results: dict) -> list[dict]:
    """Each target of the issue: what was measured and whether it is met (None: not measured)."""
    out = []

    def add(name, target, measured, met):
        out.append({"target": name, "goal": target, "measured": measured, "met": met})

    for family, goal in (("feed", TARGET_FEED_RATIO), ("fast", TARGET_FAST_RATIO)):
        best = _best(_speed_rows(results, family), "ratio")
        default = next((r for r in _speed_rows(results, family) if r["variant"]["key"] == family), None)
        if best is None:
            add(f"training pairs/s, {FAMILY_NAMES[family]}", f">= {goal:g}x tutorial", "n/a", None)
        else:
            text = f"{best['ratio']:.2f}x ({best['variant']['key']})"
            if default is not None and default is not best:
                text += f"; float32 default {default['ratio']:.2f}x"
            add(f"training pairs/s, {FAMILY_NAMES[family]}", f">= {goal:g}x tutorial", text, best["ratio"] >= goal)
    best = _best(_speed_rows(results, "fast"), "efficiency")
    add("model FLOP/s / float32 matmul FLOP/s, fast mode", f">= {TARGET_EFFICIENCY:.0%}",
        "n/a" if best is None else f"{best['efficiency']:.1%} ({best['variant']['key']})",
        None if best is None else best["efficiency"] >= TARGET_EFFICIENCY)
    quality = results.get("quality") or {}
    ours = {k: v for k, v in quality.items() if k != "tutorial"}
    if ours:
        name, best_q = max(ours.items(), key=lambda kv: kv[1]["bleu"])
        ref = quality.get("tutorial", {}).get("bleu")
        met = best_q["bleu"] >= TARGET_BLEU and (ref is None or best_q["bleu"] > ref)
        add("BLEU after the same budget", f">= {TARGET_BLEU:g} and ahead of the tutorial",
            f"{best_q['bleu']:.1f} ({name}; chrF {best_q['chrf']:.1f}) vs tutorial {_f(ref)}", met)
    else:
        add("BLEU after the same budget", f">= {TARGET_BLEU:g}", "n/a", None)
    serving = results.get("serving") or {}
    tut = (serving.get("tutorial") or {}).get("serving_default")
    for family in ("feed", "fast"):
        mine = (serving.get(family) or {}).get("translate_with_attention")
        beam = (serving.get(family) or {}).get("beam_search")
        if tut and mine:
            lat = mine["latency_ms_median"] / tut["latency_ms_median"]
            p90 = mine["latency_ms_p90"] / tut["latency_ms_p90"]
            add(f"serving latency, 1 sentence, {family}", f"median and p90 <= {TARGET_LATENCY_RATIO:g}x tutorial",
                f"median {lat:.2f}x, p90 {p90:.2f}x", lat <= TARGET_LATENCY_RATIO and p90 <= TARGET_LATENCY_RATIO)
            thr = mine["batch_sentences_per_s"] / tut["batch_sentences_per_s"]
            add(f"serving sentences/s at batch 64, {family}", f">= {TARGET_THROUGHPUT_RATIO:g}x tutorial",
                f"{thr:.2f}x", thr >= TARGET_THROUGHPUT_RATIO)
        if mine and beam:
            r = beam["latency_ms_median"] / mine["latency_ms_median"]
            add(f"beam 4 latency / greedy latency, {family}", f"<= {TARGET_BEAM_RATIO:g}x", f"{r:.2f}x",
                r <= TARGET_BEAM_RATIO)
    tut_rss = quality.get("tutorial", {}).get("train_peak_rss_mb")
    for family in ("feed", "fast"):
        if family in quality:
            rss = quality[family]["train_peak_rss_mb"]
            add(f"training peak RSS, {family}", f"< {TARGET_TRAIN_RSS_MB:,.0f} MB (tutorial here: {_f(tut_rss, 0)} MiB)",
                f"{rss:,.0f} MiB", rss < TARGET_TRAIN_RSS_MB)
    rows = (results.get("robustness") or {}).get("rows") or {}
    ref = next((r for label, r in rows.items() if label.startswith("tutorial")), None)
    ours = rows.get("ours (feed), greedy")
    if ours:
        copied = ours["swapped"]["copy_rate"]
        add("names/numbers copied verbatim (swapped set), ours greedy", f">= {TARGET_COPY_RATE:.0%}",
            f"{_pct(copied)} (tutorial {_pct(ref and ref['swapped']['copy_rate'])})",
            None if copied is None else copied >= TARGET_COPY_RATE)
        off = rows.get("ours (feed), greedy, no [UNK] replacement")
        add("[UNK] in the output, replacement on", "0%",
            f"{_pct(ours['unk_rate'])} (off: {_pct(off and off['unk_rate'])})", ours["unk_rate"] == 0)
        rep, ref_rep = ours["long"]["repetition_rate"], ref and ref["long"]["repetition_rate"]
        add("repetition rate on long inputs, ours greedy", f"<= tutorial and <= {TARGET_REPETITION:.0%}",
            f"{_pct(rep)} (tutorial {_pct(ref_rep)})",
            None if rep is None else rep <= TARGET_REPETITION and (ref_rep is None or rep <= ref_rep))
        if ref:
            add("BLEU and chrF on long inputs, ours greedy", "ahead of the tutorial",
                f"BLEU {_f(ours['long']['bleu'])} vs {_f(ref['long']['bleu'])}, "
                f"chrF {_f(ours['long']['chrf'])} vs {_f(ref['long']['chrf'])}",
                ours["long"]["bleu"] > ref["long"]["bleu"] and ours["long"]["chrf"] > ref["long"]["chrf"])
    return out


def render(results: dict) -> str:
    speed = results.get("speed") or {}
    machine = speed.get("machine") or {}
    settings = results.get("settings", {})
    size = settings.get("size", {})
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
    lines += ["## Run", ""]
    versions = machine.get("versions", {})
    run_rows = [
        ["command", f"`{results.get('command', '')}`"],
        ["date", machine.get("date", results.get("started", "n/a"))],
        ["CPU", f"{machine.get('cpu', 'n/a')}, {machine.get('cores', 'n/a')} cores"
                f"{', bfloat16 matmul (AMX/AVX512-BF16)' if machine.get('bfloat16_matmul') else ''}"],
        ["GPU", machine.get("gpu", "n/a")],
        ["load average at start", machine.get("load_average_at_start", "n/a")],
        ["libraries", ", ".join(f"{k} {v}" for k, v in versions.items()) or "n/a"],
        ["data", f"{speed.get('data', settings.get('data'))}: {_f(speed.get('train_pairs'), 0)} training pairs, "
                 f"{_f(speed.get('test_pairs'), 0)} test pairs"],
        ["sizes", f"embedding {size.get('embedding_dim')}, units {size.get('units')} (tutorial GRUs; ours: "
                  f"{size.get('encoder_units') or (size.get('units', 0) // 2)} per encoder direction, decoder "
                  f"{2 * (size.get('encoder_units') or (size.get('units', 0) // 2))}), batch {size.get('batch_size')}, "
                  f"vocabulary {size.get('vocabulary')} per language, Adam {size.get('learning_rate')}; Transformer: "
                  f"{size.get('num_layers', 'n/a')} + {size.get('num_layers', 'n/a')} layers, {size.get('num_heads', 'n/a')} "
                  f"heads, width {size.get('model_dim', 'n/a')}, feed-forward {size.get('ff_dim', 'n/a')}"],
        ["float32 matmul (2048^2), this process", f"{_f((speed.get('peak_flops_float32') or float('nan')) / 1e9)} GFLOP/s "
                                                  f"(after the speed rows: {_f((speed.get('peak_flops_float32_after') or float('nan')) / 1e9)})"],
    ]
    if speed.get("peak_flops_bfloat16"):
        run_rows.append(["bfloat16 matmul (2048^2)", f"{_f(speed['peak_flops_bfloat16'] / 1e9)} GFLOP/s"])
    run_rows += [
        ["measurement", f"speed: {settings.get('repeats')} interleaved windows of {settings.get('steps')} steps per row "
                        f"after {settings.get('warmup')} warm-up steps ({settings.get('xla_warmup')} for XLA rows), "
                        f"medians; quality budget "
                        f"{_f(settings.get('budget_s', 0) / 60)} min per model"],
        ["total wall time", f"{_f(results.get('wall_minutes'))} min"],
    ]
    lines += [_table(["", ""], run_rows), ""]

    lines += ["## Targets", ""]
    lines += [_table(["target", "goal", "measured", "status"],
                     [[t["target"], t["goal"], t["measured"], _status(t["met"])] for t in targets(results)]), ""]

    if speed.get("rows"):
        lines += ["## Training speed", "",
                  "Rows `feed-0` ... `feed` are a ladder: each adds one lever to the row above it (our model, input "
                  "feeding and Bahdanau attention throughout). The other rows change one thing from a default. "
                  "`x tutorial` is the median over rounds of pairs/s divided by the reference's pairs/s in the same "
                  "round. Tokens are non-padding source + target tokens in each model's own tokenisation "
                  "([START]/[END] included). Model FLOPs are counted from the layer sizes and padded batch shapes "
                  "(`benchmarks/measure.py`); `% peak` divides them by the better of the two float32 matmul "
                  "medians above (measured before and after the rows, in the same process).", ""]
        table = []
        for r in speed["rows"]:
            v = r["variant"]
            table.append([f"`{v['key']}`", v["label"], _f(r["steps_per_s"], 2), _f(r["pairs_per_s"], 0),
                          _f(r["tokens_per_s"], 0), f"**{r['ratio']:.2f}x**", _f(r["cpu_ms_per_step"], 0),
                          _f(r["flops_per_s"] / 1e9), _f(100 * r["efficiency"], 1, "%"), f"{r['parameters']:,}",
                          _f(r["warmup_s"], 0)])
        lines += [_table(["row", "configuration", "steps/s", "pairs/s", "tokens/s", "x tutorial", "CPU ms/step",
                          "model GFLOP/s", "% peak", "parameters", "warm-up s"], table), ""]

    if results.get("threads"):
        lines += ["## Thread settings", "",
                  "TensorFlow's intra-op / inter-op thread pools, one process per setting (they are fixed when "
                  "TensorFlow starts); each process measures the reference and our two defaults.", ""]
        table = []
        for t in results["threads"]:
            by_key = {r["variant"]["key"]: r for r in t["rows"]}
            cells = [f"intra {t['intra']}, inter {t['inter']}"]
            for key in ("tutorial", "feed", "fast"):
                r = by_key.get(key)
                cells.append("n/a" if r is None else f"{r['pairs_per_s']:.0f} ({r['ratio']:.2f}x)")
            table.append(cells)
        lines += [_table(["threads", "tutorial pairs/s", "ours (input feeding) pairs/s", "fast mode pairs/s"], table), ""]

    quality = results.get("quality") or {}
    if quality:
        lines += ["## Quality after the same wall-clock budget", "",
                  "Each model trains in its own process for the budget (from the first `fit` call: tracing and "
                  "compilation count), then greedy-translates the test split (SHA-1 of the English side divisible "
                  "by 50). BLEU and chrF by sacrebleu, lower-cased, against the raw English references, the same for "
                  "every model. Ours train with the fastest configuration of their family in the speed table.", ""]
        table = []
        for family, q in quality.items():
            table.append([FAMILY_NAMES.get(family, family), f"`{q['variant']['key']}`", f"{q['steps']:,}", q["epochs"],
                          _f(q["train_seconds"], 0), _f(q["final_loss"], 3), f"**{q['bleu']:.1f}**", f"{q['chrf']:.1f}",
                          q["test_sentences"], _f(q["train_peak_rss_mb"], 0)])
        lines += [_table(["model", "configuration", "steps", "full epochs", "train s", "final loss", "BLEU", "chrF",
                          "test sentences", "training peak RSS MiB"], table), ""]
        any_q = next(iter(quality.values()))
        lines += [f"Signatures: `{any_q['bleu_signature']}`, `{any_q['chrf_signature']}`.", ""]
        for family, q in quality.items():
            lines += [f"Examples, {FAMILY_NAMES.get(family, family)}:", ""]
            lines += [f"- `{e['source']}` -> `{e['hypothesis']}` (reference: `{e['reference']}`)" for e in q["examples"][:3]]
            lines += [""]

    serving = results.get("serving") or {}
    if serving:
        lines += ["## Serving through the SavedModels", "",
                  "All SavedModels loaded in one process by TF Serving's own loader (TensorFlow's C API: "
                  "`TF_LoadSessionFromSavedModel`, then `TF_SessionRun` on the signatures' tensor names, "
                  "tensorflow-text's ops registered as the server links them), interleaved sentence by sentence; "
                  "the last column is the same call through `tf.saved_model.load` (the TF2 path). Greedy unless stated.",
                  ""]
        ref = (serving.get("tutorial") or {}).get("serving_default")
        table = []
        for name, sigs in serving.items():
            for sig, m in sigs.items():
                lat_ratio = m["latency_ms_median"] / ref["latency_ms_median"] if ref else float("nan")
                thr = m.get("batch_sentences_per_s")
                thr_ratio = thr / ref["batch_sentences_per_s"] if (ref and thr) else float("nan")
                tf2 = m.get("tf2") or {}
                table.append([FAMILY_NAMES.get(name, name), f"`{sig}` ({m['label']})", _f(m["latency_ms_median"], 2),
                              _f(m["latency_ms_p90"], 2), _f(lat_ratio, 2, "x"), _f(thr, 0), _f(thr_ratio, 2, "x"),
                              _f(tf2.get("latency_ms_median"), 2)])
        lines += [_table(["model", "signature", "1 sentence ms (median)", "p90 ms", "latency x tutorial",
                          "sentences/s at batch 64", "throughput x tutorial", "TF2 path: 1 sentence ms"], table), ""]

    lines += serving_sections(results)  # benchmarks/serving_report.py: XLA compilations, serving memory, time breakdown
    rss = results.get("serving_rss") or {}
    if quality or rss:
        lines += ["## Memory", "", "Peak resident set size (`getrusage`), one process per model.", ""]
        table = [[FAMILY_NAMES.get(n, n), _f(quality.get(n, {}).get("train_peak_rss_mb"), 0), _f(rss.get(n), 0)]
                 for n in dict.fromkeys([*quality, *rss])]
        lines += [_table(["model", "training peak RSS MiB", "serving peak RSS MiB"], table), ""]
    lines += robustness_section(results.get("robustness"))
    return "\n".join(lines).rstrip() + "\n"


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def robustness_section(robustness: dict | None) -> list[str]:
    """The robustness table (``seq2seq-keras evaluate --robustness`` on the bench's models), as Markdown lines."""
    if not robustness or not robustness.get("rows"):
        return []
    sizes = robustness["set"]
    lines = ["## Robustness: names, numbers, long inputs", "",
             f"Built from the test split (no download): {sizes['swapped']} test pairs whose names/numbers are "
             f"swapped for ones never seen in training (both sides); {sizes['longest']} longest test sentences and "
             f"{sizes['concatenation']} concatenations of 2-3 test pairs. *Copied*: outputs containing every "
             "inserted name/number verbatim. *Repetition*: long-input outputs repeating a word 3-gram that the "
             "reference does not repeat. BLEU/chrF: sacrebleu, lower-cased, raw references. Same models as the "
             "quality table (no extra training).", ""]
    table = []
    for label, r in robustness["rows"].items():
        table.append([label, _pct(r["swapped"]["copy_rate"]), _pct(r["unk_rate"]), _f(r["long"]["bleu"]),
                      _f(r["long"]["chrf"]), _pct(r["long"]["repetition_rate"]),
                      _pct(r["long"]["outputs_45_words_or_more"]), _f(r["swapped"]["bleu"])])
    lines += [_table(["system", "names/numbers copied", "[UNK] in output", "long BLEU", "long chrF",
                      "repetition (long)", "long outputs >= 45 words", "swapped BLEU"], table), ""]
    return lines
