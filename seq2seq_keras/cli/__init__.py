"""The ``seq2seq-keras`` command: parsers and commands (``commands``) and the flags derived from the
settings' fields (``flags``). ``--help`` answers without importing TensorFlow."""


def main(argv=None) -> int:
    """Entry point of the ``seq2seq-keras`` console script."""
    from .commands import main as run

    return run(argv)
