"""Benchmarks for seq2seq_keras (not part of the installed package): ``make bench``.

* :mod:`benchmarks.run` - the command line and the orchestration (one process per part);
* :mod:`benchmarks.tutorial_reference` - the in-run baseline: TensorFlow's older NMT-with-attention
  tutorial, re-implemented;
* :mod:`benchmarks.training_speed` - training speed, lever by lever;
* :mod:`benchmarks.quality` - BLEU/chrF after a wall-clock budget, and the SavedModel exports;
* :mod:`benchmarks.serving` - SavedModel latency, throughput and memory;
* :mod:`benchmarks.measure` - the machine, peak matmul speed, FLOP counts, peak RSS;
* :mod:`benchmarks.corpus` - the data (spa-eng, or the built-in corpus with a notice);
* :mod:`benchmarks.report` - BENCHMARKS.md.
"""
