"""Concurrent clients on one loaded SavedModel, as TF Serving's request threads share one session.

TF Serving answers every request on a thread of its own, all calling ``Session::Run`` on the one
session of the loaded version (no batching unless ``--enable_batching``). This load test does the
same through TF Serving's loader (:class:`seq2seq_keras.serving.tf_serving_loader.ServingSession`):
``n`` Python threads (``ctypes`` releases the GIL during ``TF_SessionRun``) each send one-sentence
requests back to back, all released together, over the same sentences for every model and level.
Per level: sentences/s over the wall time of the level, and the median and 99th-percentile latency
of a request. The models take turns level by level, so they see the same machine.

:func:`batching_headroom` says what server-side batching (``saved_models/batching_parameters.txt``)
could add: merged into batches of 64, concurrent sentences would go at the batch-64 rate of the
speed table instead of the busiest level's.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Sequence

#: Concurrent clients per level.
LEVELS = (1, 4, 16, 64)


def _percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def run_level(call, sentences: Sequence[str], clients: int, requests: int) -> dict:
    """``requests`` one-sentence calls of ``call(sentences)`` from ``clients`` threads started together.

    Client ``i`` sends sentences ``i, i + clients, ...`` (of ``sentences``, cycled), one request at a
    time. Returns ``{"clients", "requests", "sentences_per_s", "latency_ms_p50", "latency_ms_p99",
    "errors"}``; a failing request is counted in ``errors`` (its first message in ``"error"``) and
    not timed.
    """
    sentences = list(sentences)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        mine = [sentences[k % len(sentences)] for k in range(i, requests, clients)]
        start.wait()
        for sentence in mine:
            t = time.perf_counter()
            try:
                call([sentence])
            except Exception as error:  # reported, never hidden
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
                continue
            elapsed = time.perf_counter() - t
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    out = {
        "clients": clients,
        "requests": requests,
        "sentences_per_s": len(latencies) / wall if wall > 0 else float("nan"),
        "latency_ms_p50": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "latency_ms_p99": 1000 * _percentile(latencies, 99) if latencies else float("nan"),
        "errors": len(errors),
    }
    if errors:
        out["error"] = errors[0]
    return out


def load_test(
    models: dict[str, dict],
    sentences: Sequence[str],
    *,
    levels: Sequence[int] = LEVELS,
    requests: int = 320,
    signature: str = "serving_default",
) -> dict[str, dict]:
    """``models``: name -> {"savedmodel": path, ...}; each loaded once by TF Serving's loader, its
    warm-up file replayed (as TF Serving does), then :func:`run_level` at each of ``levels`` on
    ``signature``, the models taking turns per level. Returns ``{name: {"signature", "levels":
    [run_level's dict, ...]}}``."""
    from .serving import _load

    calls = {name: _load(spec["savedmodel"], "session")[signature] for name, spec in models.items()}
    sentences = list(sentences)
    for call in calls.values():  # every model's executor warm before the first level
        for s in sentences[:8]:
            call([s])
    results = {name: {"signature": signature, "levels": []} for name in calls}
    for clients in levels:
        for name, call in calls.items():
            results[name]["levels"].append(run_level(call, sentences, clients, max(requests, 2 * clients)))
    return results


def batching_headroom(load: dict, serving: dict) -> dict[str, dict]:
    """Per model: the busiest level's sentences/s against the batch-64 sentences/s of the speed table
    (``serving[name][signature]["batch_sentences_per_s"]``): how much more server-side batching
    could serve, ``{"concurrent": s/s, "batched": s/s, "gain": ratio}`` (``None`` when not measured)."""
    out = {}
    for name, entry in load.items():
        best = max((level["sentences_per_s"] for level in entry["levels"]), default=None)
        batched = ((serving or {}).get(name) or {}).get(entry["signature"], {}).get("batch_sentences_per_s")
        out[name] = {
            "concurrent": best,
            "batched": batched,
            "gain": batched / best if best and batched else None,
        }
    return out
