"""Where a serving call's time goes: text processing, encoder, decode loop (per step), the rest, call overhead.

Measured through TF Serving's loader (:class:`seq2seq_keras.serving.tf_serving_loader.ServingSession`), for
one signature of each SavedModel at each batch size:

* ``latency``: the median of untraced calls (``TF_SessionRun``, as the serving table);
* ``call overhead``: the median of calls that feed the same request and fetch a constant,
  computing nothing (:meth:`BenchSession.run_nothing`: tensor conversion, the C API, the
  session's executor and rendezvous);
* the graph's share, ``latency - overhead``, split over the stages in proportion to their op
  time in traced calls (``RunOptions(trace_level=FULL_TRACE)``: one ``NodeExecStats`` per op
  executed, a loop body's ops once per iteration) of a second session of the same SavedModel
  with one inter-op thread, where ops run one at a time and their times add up. Stages are told apart by the names the
  session gives the executed nodes (function bodies are inlined by Grappler and keep their
  scopes): ``/encoder`` -> encoder; the outermost ``while`` loop -> decode loop; string,
  ragged and lookup ops -> text processing; anything else (decoder start, output assembly) ->
  other. Tracing itself slows every op, so traced times only share out the untraced figure.

The decode steps are counted (the decode loop's ``LoopCond`` runs once per step plus once),
and the ops: executed per decode step, and in the graph the session ran (after Grappler and
control-flow lowering), next to the decode-loop body's op count in the SavedModel's own
function library (before Grappler). Grappler's visible work is counted too: nodes it created
(``ConstantFolding/...``) and fused kernels (``_Fused*``, ``_Mkl*Fused*``).

It holds :class:`BenchSession` (the package's ``ServingSession`` with a session config, traced
calls and calls that compute nothing), the attribution of traced ops to stages
(:func:`trace_stages`, :func:`graph_counts`, :func:`savedmodel_loop_body_ops`) and the
breakdown itself (:func:`breakdown`, :func:`serving_breakdown`).
"""

from __future__ import annotations

import ctypes
import statistics
import time
from collections.abc import Sequence

from seq2seq_keras.serving.tf_serving_loader import ServingLoaderError, ServingSession, _Status, tensorflow_library_dir


class BenchSession(ServingSession):
    """TF Serving's loader (:class:`~seq2seq_keras.serving.tf_serving_loader.ServingSession`) with what the
    breakdown needs besides ``run``: a session config, traced calls, calls that compute nothing.

    Args:
        path, tags, op_libraries: as ``ServingSession``'s.
        config: an optional ``tf.compat.v1.ConfigProto`` for the session (default: TensorFlow's
            defaults, what TF Serving uses); e.g. one inter-op thread, or Grappler off.
    """

    def __init__(self, path, *, config=None, **kwargs):
        self._config = config
        super().__init__(path, **kwargs)

    def _new_session_options(self):
        """TensorFlow's default ``TF_SessionOptions`` with ``config`` set (C API ``TF_SetConfig``)."""
        options = super()._new_session_options()
        if self._config is not None:
            set_config = ctypes.CDLL(str(tensorflow_library_dir() / "libtensorflow_cc.so.2")).TF_SetConfig
            set_config.restype = None
            set_config.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
            proto = self._config.SerializeToString()
            status = _Status(self._c)
            set_config(options, proto, len(proto), status.ptr)
            try:
                status.check("TF_SetConfig")
            except ServingLoaderError:
                self._c["TF_DeleteSessionOptions"](options)
                raise
        return options

    def run_traced(self, signature: str, inputs: dict, output_names=None, *, partition_graphs: bool = False):
        """``run`` with ``RunOptions(trace_level=FULL_TRACE)``: ``(outputs, RunMetadata)``.

        The ``RunMetadata`` (``tensorflow.core.protobuf.config_pb2``) holds ``step_stats``: one
        ``NodeExecStats`` per executed op (a loop body's ops once per iteration), with start and
        end times in microseconds, and, with ``partition_graphs=True``, the graphs the session
        actually ran (after Grappler and control-flow lowering). Tracing slows every op down, so
        use it to attribute time, and ``run`` to measure it. Raises the same errors as ``run``.
        """
        from tensorflow.core.protobuf import config_pb2

        outputs = self._signature(signature).outputs
        names = list(output_names) if output_names is not None else sorted(outputs)
        options = config_pb2.RunOptions(
            trace_level=config_pb2.RunOptions.FULL_TRACE, output_partition_graphs=partition_graphs
        )
        result, metadata = self._session_run(
            signature, inputs, {n: outputs[n].name for n in names}, options.SerializeToString()
        )
        return result, config_pb2.RunMetadata.FromString(metadata)

    def run_nothing(self, signature: str, inputs: dict):
        """A ``Session::Run`` that feeds ``inputs`` like ``run`` but fetches the graph's smallest
        constant (:func:`_smallest_constant`), computing nothing: its time is the per-call cost
        outside the graph's work (tensor conversion, the C API, the session's executor setup and
        rendezvous), the "call overhead" of a request. Returns the constant's value.

        Raises:
            ServingLoaderError: the graph has no top-level constant to fetch.
        """
        const = _smallest_constant(self.meta_graph.graph_def)
        if const is None:
            raise ServingLoaderError(f"{self.path}: no top-level Const to fetch for a call that computes nothing")
        return self._session_run(signature, inputs, {"nothing": const + ":0"})[0]["nothing"]


def _smallest_constant(graph_def) -> str | None:
    """The name of the graph's top-level ``Const`` with the fewest bytes (a scalar where there is one),
    or ``None``. Fetching it costs the same whatever the graph; fetching a large one (e.g. a
    vocabulary of 5,000 strings, which the tutorial's graph holds as constants) would add the
    conversion of every element to the "overhead"."""
    consts = [n for n in graph_def.node if n.op == "Const"]
    if not consts:
        return None
    return min(consts, key=lambda n: (n.attr["value"].tensor.ByteSize(), n.name)).name


STAGES = ("text processing", "encoder", "decode loop", "other")
_TEXT_MARKERS = (
    "String",
    "Regex",
    "Ragged",
    "Lookup",
    "UTF8",
    "Unicode",
    "Join",
    "Tokeniz",
    "Wordpiece",
    "HashTable",
    "text_vectorization",
    "string_lookup",
)
_PLUMBING = {
    "Enter",
    "Exit",
    "Merge",
    "Switch",
    "NextIteration",
    "LoopCond",
    "Identity",
    "_Recv",
    "_Send",
    "NoOp",
    "IdentityN",
    "_Arg",
    "_Retval",
}


def _op_type(label: str) -> str:
    """``"name = Op(inputs)"`` -> ``"Op"``."""
    return label.split(" = ", 1)[1].split("(", 1)[0] if " = " in label else ""


def _decode_loop_prefix(names) -> str | None:
    """The outermost ``.../while/`` scope outside the encoder (the search's loop)."""
    candidates = [n.split("/while/")[0] + "/while/" for n in names if "/while/" in n and "/encoder" not in n]
    return min(candidates, key=len) if candidates else None


def stage_of(name: str, op: str, loop: str | None) -> str:
    """The stage (:data:`STAGES`) an executed node belongs to."""
    if "/encoder" in name:
        return "encoder"
    if loop and (name.startswith(loop) or name.startswith("Func/" + loop)):
        return "decode loop"
    if any(m in op or m in name for m in _TEXT_MARKERS):
        return "text processing"
    return "other"


def trace_stages(metadata) -> dict:
    """One traced call's ``RunMetadata`` -> ``{"op_us": {stage: us}, "ops": {stage: executed ops},
    "loop_compute_ops": decode-loop ops other than control-flow plumbing (Enter, Merge, Switch, ...),
    "steps": decode steps, "graph_us": first op start to last op end}``."""
    nodes = [n for d in metadata.step_stats.dev_stats for n in d.node_stats]
    loop = _decode_loop_prefix(n.node_name for n in nodes)
    op_us = dict.fromkeys(STAGES, 0)
    ops = dict.fromkeys(STAGES, 0)
    loop_conds = loop_compute = 0
    for n in nodes:
        op = _op_type(n.timeline_label)
        stage = stage_of(n.node_name, op, loop)
        op_us[stage] += n.op_end_rel_micros - n.op_start_rel_micros
        ops[stage] += 1
        loop_compute += stage == "decode loop" and op not in _PLUMBING and op != "Const"
        if op == "LoopCond" and loop and n.node_name.startswith(loop) and "/while/" not in n.node_name[len(loop) :]:
            loop_conds += 1
    start = min(n.all_start_micros for n in nodes)
    end = max(n.all_start_micros + n.all_end_rel_micros for n in nodes)
    return {
        "op_us": op_us,
        "ops": ops,
        "loop_compute_ops": loop_compute,
        "steps": max(loop_conds - 1, 0),
        "graph_us": end - start,
    }


def graph_counts(metadata) -> dict:
    """Ops in the graph the session ran (``partition_graphs``), by stage, and Grappler's marks."""
    nodes = [n for g in metadata.partition_graphs for n in g.node]
    loop = _decode_loop_prefix(n.name for n in nodes)
    by_stage = dict.fromkeys(STAGES, 0)
    loop_compute = 0
    for n in nodes:
        stage = stage_of(n.name, n.op, loop)
        by_stage[stage] += 1
        if stage == "decode loop" and n.op not in _PLUMBING and n.op != "Const":
            loop_compute += 1
    return {
        "nodes": len(nodes),
        "by_stage": by_stage,
        "decode_loop_compute_ops": loop_compute,
        "constant_folding_nodes": sum(n.name.startswith("ConstantFolding") for n in nodes),
        "fused_kernels": sum(n.op.startswith("_Fused") or (n.op.startswith("_Mkl") and "Fused" in n.op) for n in nodes),
    }


def savedmodel_loop_body_ops(meta_graph, signature: str) -> int | None:
    """Ops (``Const`` excluded, called functions included) in the body of the signature's outermost
    ``While`` loop, in the SavedModel's own function library: the graph before Grappler."""
    library = {f.signature.name: f for f in meta_graph.graph_def.library.function}
    output = next(iter(meta_graph.signature_def[signature].outputs.values())).name.split(":")[0]
    node = next((n for n in meta_graph.graph_def.node if n.name == output), None)

    def called(node_def):
        return [a.func.name for a in node_def.attr.values() if a.func.name in library]

    def count(name, seen):
        if name in seen:
            return 0
        seen.add(name)
        total = 0
        for n in library[name].node_def:
            if n.op != "Const":
                total += 1
            for f in called(n):
                total += count(f, seen)
        return total

    frontier = called(node) if node is not None else []
    seen = set()
    while frontier:  # breadth first: the outermost While reached from the signature, the encoder's left out
        name = frontier.pop(0)
        if name in seen:
            continue
        seen.add(name)
        for n in library[name].node_def:
            if n.op in ("While", "StatelessWhile") and "encoder" not in n.name:
                return count(n.attr["body"].func.name, set())
            if "encoder" not in n.name:
                frontier.extend(called(n))
    return None


def breakdown(
    savedmodel: str,
    signature: str,
    sentences: Sequence[str],
    *,
    batch_sizes: Sequence[int] = (1, 64),
    calls: int = 20,
    traced: int = 5,
) -> dict:
    """The breakdown of one SavedModel's ``signature`` at each batch size (see the module docstring).

    Returns ``{batch size: {"latency_ms", "overhead_ms", "graph_ms", "stages_ms": {stage: ms},
    "per_step_ms", "steps", "ops_per_step", "compute_ops_per_step", "executed_ops": {stage: n}}, "graph": graph_counts,
    "savedmodel_loop_body_ops": n}``.
    """
    import numpy as np
    from tensorflow.core.protobuf import config_pb2

    from seq2seq_keras.serving.tf_serving_loader import tf_text_op_libraries

    session = BenchSession(savedmodel, op_libraries=tf_text_op_libraries())
    # Traced in a second session of the same SavedModel with one inter-op thread: its ops run one at
    # a time, so their traced times add up (in the default session independent ops overlap, and one
    # that waits for a core while another runs would count its wait).
    sequential = BenchSession(
        savedmodel, op_libraries=tf_text_op_libraries(), config=config_pb2.ConfigProto(inter_op_parallelism_threads=1)
    )
    (input_name,) = session.inputs(signature)
    sentences = list(sentences)
    out: dict = {"savedmodel_loop_body_ops": savedmodel_loop_body_ops(session.meta_graph, signature)}
    for batch in batch_sizes:
        requests = [
            {input_name: np.array([sentences[(i * batch + j) % len(sentences)] for j in range(batch)], object)}
            for i in range(calls)
        ]
        for r in requests:  # warm-up: every request once
            session.run(signature, r)
        latency, overhead = [], []
        for r in requests:  # interleaved, so that both see the same machine
            t = time.perf_counter()
            session.run(signature, r)
            latency.append(time.perf_counter() - t)
            t = time.perf_counter()
            session.run_nothing(signature, r)
            overhead.append(time.perf_counter() - t)
        traces = []
        for r in requests[:traced]:
            sequential.run(signature, r)
            _, metadata = sequential.run_traced(signature, r, partition_graphs="graph" not in out)
            if "graph" not in out:
                out["graph"] = graph_counts(metadata)
            traces.append(trace_stages(metadata))
        out[batch] = _combine(1000 * statistics.median(latency), 1000 * statistics.median(overhead), traces)
    session.close()
    sequential.close()
    return out


def _combine(latency_ms: float, overhead_ms: float, traces: list[dict]) -> dict:
    """Share the untraced graph time out by the traced op time of each stage (summed over the traced calls)."""
    op_us = {s: sum(t["op_us"][s] for t in traces) for s in STAGES}
    total = sum(op_us.values()) or 1
    graph_ms = max(latency_ms - overhead_ms, 0.0)
    stages = {s: graph_ms * op_us[s] / total for s in STAGES}
    steps = statistics.median(t["steps"] for t in traces)
    loop_ops = statistics.median(t["ops"]["decode loop"] for t in traces)
    return {
        "latency_ms": latency_ms,
        "overhead_ms": overhead_ms,
        "graph_ms": graph_ms,
        "stages_ms": stages,
        "steps": steps,
        "per_step_ms": stages["decode loop"] / steps if steps else None,
        "ops_per_step": loop_ops / steps if steps else None,
        "compute_ops_per_step": statistics.median(t["loop_compute_ops"] for t in traces) / steps if steps else None,
        "executed_ops": {s: statistics.median(t["ops"][s] for t in traces) for s in STAGES},
    }


def serving_breakdown(models: dict[str, dict], sentences: Sequence[str], **kwargs) -> dict:
    """:func:`breakdown` of each model's comparison signature (tutorial ``serving_default``, ours
    ``translate_with_attention``), XLA exports left out (their core is one compiled op).
    ``{name: breakdown}``."""
    from .serving import SIGNATURES

    return {
        name: {
            "signature": SIGNATURES[spec["kind"]][0][0],
            **breakdown(spec["savedmodel"], SIGNATURES[spec["kind"]][0][0], sentences, **kwargs),
        }
        for name, spec in models.items()
        if spec["kind"] in ("tutorial", "seq2seq_keras")
    }
