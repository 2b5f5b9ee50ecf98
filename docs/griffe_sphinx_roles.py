"""A Griffe extension for the API reference: the docstrings' Sphinx roles rendered as code.

The package's docstrings cross-reference with Sphinx roles (``:func:`start_tensorflow```,
``:class:`~seq2seq_keras.model.attention.BahdanauAttention```), which help(), IDEs and
readers of the source understand. Griffe's Google-style parser leaves them as literal
text, so mkdocstrings would print ``:func:`` before every name. This extension rewrites
each role to the Markdown code span of its target (the last dotted part for ``~``) while
the docs are built; the source is not changed.
"""

from __future__ import annotations

import re

import griffe

#: ``:role:`target``` with Sphinx's optional ``py:`` domain and ``~`` (show the last part only).
SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")


def as_code(docstring: str) -> str:
    """The docstring with every Sphinx role replaced by a code span of its target."""

    def code(match: re.Match) -> str:
        short, target = match.groups()
        return f"`{target.rsplit('.', 1)[-1] if short else target}`"

    return SPHINX_ROLE.sub(code, docstring)


class SphinxRolesAsCode(griffe.Extension):
    """Rewrite Sphinx roles in every docstring Griffe loads (modules, classes, functions, attributes)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = as_code(obj.docstring.value)
