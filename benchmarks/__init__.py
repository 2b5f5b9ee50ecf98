"""Benchmarks for seq2seq_keras (not part of the installed package): ``make bench``.

* :mod:`benchmarks.run` - the command line and the orchestration (one process per part);
* :mod:`benchmarks.corpus` - the data (spa-eng, or the built-in corpus with a notice);
* :mod:`benchmarks.tutorial_reference` - the in-run baseline: TensorFlow's older NMT-with-attention
  tutorial, re-implemented;
* :mod:`benchmarks.training_speed` - training speed, lever by lever (the ladder's rungs);
* :mod:`benchmarks.quality` - BLEU/chrF after a wall-clock budget, and the SavedModel exports;
* :mod:`benchmarks.curve` - the quality curve: validation BLEU against training time, time to quality, its plot;
* :mod:`benchmarks.robustness` - names, numbers and long inputs, ours against the tutorial reference;
* :mod:`benchmarks.serving` - SavedModel latency, throughput and memory (plain and XLA exports);
* :mod:`benchmarks.parity` - every exported signature through TF Serving's loader against ``model.translate``;
* :mod:`benchmarks.serving_breakdown` - where a serving call's time goes (traced calls, call overhead);
* :mod:`benchmarks.measure` - the machine, peak matmul speed, FLOP counts, peak RSS;
* :mod:`benchmarks.report` - docs/benchmarks.md (targets, training, quality, robustness tables);
* :mod:`benchmarks.serving_report` - docs/benchmarks.md's serving sections beyond the speed table.
"""
