"""From a trained model to sentences: the options (``options``), the one translation graph behind Python,
the command line and every exported signature (``pipeline``), the searches (``search``: greedy, sampling,
beam), greedy compiled by XLA (``xla_greedy``) and unknown-word replacement (``unknown_words``)."""
