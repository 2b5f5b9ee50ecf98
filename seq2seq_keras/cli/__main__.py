"""``python -m seq2seq_keras.cli``: the ``seq2seq-keras`` command."""

import sys

from . import main

sys.exit(main())
