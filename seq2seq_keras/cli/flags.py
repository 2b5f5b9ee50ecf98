"""Command-line flags from the library's own settings, so no default is typed twice.

Three mechanisms, all used by :mod:`seq2seq_keras.cli.commands`:

* :func:`add_config_flags`: one ``train`` flag per :class:`~seq2seq_keras.training.TrainConfig`
  field (name, type, default and help from the field), so a new field is a new flag;
  :func:`train_config_from_args` turns the parsed flags back into a ``TrainConfig``.
* :func:`add_decoding_flags`: the decoding flags of ``translate``, ``export`` and ``evaluate``,
  one per :class:`~seq2seq_keras.decoding.options.DecodingOptions` (or
  :class:`~seq2seq_keras.serving.export.ExportSettings`) field; :func:`given_decoding_options` reads
  back the ones the user gave.
* :class:`ArgumentParser`: argparse's parser with one-line errors (``PROG: error: WHAT; see PROG --help``),
  and :func:`checked` / :func:`integer` / :func:`real`: flag types whose bad values are such one-line
  errors, from a setting's own check where there is one.
* :class:`HelpFormatter`: help texts may name a library default as ``{module.NAME}`` or
  ``{module.function(parameter)}``; the value is read from the module's source
  (:func:`library_default`) only when the help is printed, so neither building the parser
  nor any command's ``--help`` imports TensorFlow or Keras.
"""

from __future__ import annotations

import argparse
import re

from ..startup import start_tensorflow

#: Library modules that import neither TensorFlow nor Keras: their defaults are read without starting TensorFlow.
_LIGHT_MODULES = frozenset({"decoding.options", "model.choices", "training.config", "training.hardware", "translation"})
_PACKAGE = __package__.rpartition(".")[0]  # seq2seq_keras


def library_default(spec: str):
    """The value of a library default, read when asked without starting TensorFlow where it can be.

    ``spec`` is ``"module.NAME"`` (a constant, ``"decoding.options.DEFAULT_BEAM_WIDTH"``) or
    ``"module.function(parameter)"`` (a parameter's default, ``"evaluation.scores.evaluate(batch_size)"``),
    ``module`` a dotted path below the package. The value is read from the module's source
    (:func:`static_default`): a literal, or a name bound to one in that module or imported
    from another of the package's modules, so ``--help`` of every command stays free of
    TensorFlow and Keras whichever module holds the default. A default that is computed
    (not a literal) is read by importing the module.

    Raises:
        ValueError: ``spec`` is neither form.
    """
    import importlib
    import inspect

    match = re.fullmatch(r"(\w+(?:\.\w+)*)\.(\w+)(?:\((\w+)\))?", spec)
    if match is None:
        raise ValueError(f"library default {spec!r}: write module.NAME or module.function(parameter).")
    module, name, parameter = match.groups()
    try:
        return static_default(module, name, parameter)
    except _NotStatic:
        pass
    if module not in _LIGHT_MODULES:
        start_tensorflow()  # most library modules load TensorFlow: quietly
    value = getattr(importlib.import_module(f"{_PACKAGE}.{module}"), name)
    return inspect.signature(value).parameters[parameter].default if parameter else value


class _NotStatic(Exception):
    """A default that the module's source does not give as a literal."""


def static_default(module: str, name: str, parameter: str | None = None):
    """``module.name`` (or the default of its ``parameter``) read from the package module's source, not imported.

    Follows names: a default written as ``DEFAULT_X`` is looked up among ``module``'s
    top-level assignments, and a name imported with ``from .other import DEFAULT_X`` in
    ``other``. Raises ``_NotStatic`` where the value is not a literal (``ast.literal_eval``).
    """
    import ast
    import importlib.util

    spec = importlib.util.find_spec(f"{_PACKAGE}.{module}")
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise _NotStatic(module)
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())

    def resolve(node):
        if isinstance(node, ast.Name):
            return static_default(module, node.id)
        try:
            return ast.literal_eval(node)
        except ValueError:
            raise _NotStatic(f"{module}.{name}") from None

    for statement in tree.body:
        if parameter is not None:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and statement.name == name:
                arguments = statement.args
                positional = arguments.posonlyargs + arguments.args
                defaults = dict(
                    zip([a.arg for a in positional[len(positional) - len(arguments.defaults) :]], arguments.defaults)
                )
                defaults.update((a.arg, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d)
                if parameter not in defaults:
                    raise _NotStatic(f"{module}.{name}({parameter})")
                return resolve(defaults[parameter])
            continue
        if isinstance(statement, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in statement.targets
        ):
            return resolve(statement.value)
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.target.id == name
            and statement.value is not None
        ):
            return resolve(statement.value)
        if isinstance(statement, ast.ImportFrom) and statement.level and statement.module:
            for alias in statement.names:
                if (alias.asname or alias.name) == name:  # from .other import NAME, below the package
                    parent = module.split(".")[: len(module.split(".")) - statement.level]
                    return static_default(".".join(parent + [statement.module]), alias.name)
    raise _NotStatic(f"{module}.{name}")


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line on stderr, ``PROG: error: WHAT; see PROG --help``, exit
    status 2 (argparse prints its usage block above the line). Sub-parsers are of the same class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line_argument_error(message)}; see {self.prog} --help\n")


_ARGUMENT = re.compile(r"^argument ([^:\s]+)(?:/\S+)*: ")


def one_line_argument_error(message: str) -> str:
    """argparse's ``argument --flag: message`` as ``--flag: message`` (``message`` alone where it names the
    flag itself), on one line, without a final full stop."""
    match = _ARGUMENT.match(message)
    if match:
        rest = message[match.end() :]
        message = rest if rest.startswith(match.group(1) + " ") else f"{match.group(1)}: {rest}"
    return " ".join(message.split()).rstrip(".")


_KINDS = {int: "an integer", float: "a number"}


def checked(kind, check, flag: str):
    """An argparse ``type`` for ``flag``: the text parsed as ``kind`` (``int``, ``float``), then ``check(flag,
    value) -> value`` (a setting's check: :func:`~seq2seq_keras.decoding.options.count`, ...). A bad value is
    an ``ArgumentTypeError`` naming the flag, e.g. "--encoder-units must be >= 1, got 0."."""

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag} must be {_KINDS.get(kind, kind.__name__)}, got {text!r}"
            ) from None
        try:
            return check(flag, value)
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = _KINDS.get(kind, kind.__name__)  # argparse's fallback message names the type
    return convert


def integer(flag: str, minimum: int):
    """An argparse ``type``: an integer >= ``minimum`` (for flags that are no library setting's field)."""
    from ..decoding.options import count

    return checked(int, count(minimum), flag)


def real(flag: str, **bounds):
    """An argparse ``type``: a finite number within ``bounds`` (``minimum``/``above``/``below``, see
    :func:`~seq2seq_keras.decoding.options.number`)."""
    from ..decoding.options import number

    return checked(float, number(**bounds), flag)


def _field_type(kind, field, flag: str):
    """The argparse ``type`` of a settings field's flag: ``kind`` checked by the field's ``check`` (a
    ``zero_is_none`` field's 0 is ``None`` first); ``kind`` itself where the field has no check or
    choices decide."""
    check = field.metadata.get("check")
    if check is None or kind not in _KINDS or field.metadata.get("choices"):
        return kind
    if field.metadata.get("zero_is_none"):
        check = _zero_is_none(check)
    return checked(kind, check, flag)


def _zero_is_none(check):
    return lambda name, value: check(name, None if value == 0 else value)


_LIBRARY_DEFAULT = re.compile(r"\{(\w+(?:\.\w+)+(?:\(\w+\))?)\}")


class HelpFormatter(argparse.HelpFormatter):
    """Fills ``{module.NAME}`` / ``{module.function(parameter)}`` in help texts with the library's value,
    only when the help is printed (see :func:`library_default`)."""

    def _get_help_string(self, action):
        text = super()._get_help_string(action) or ""
        return _LIBRARY_DEFAULT.sub(lambda m: _format_default(library_default(m.group(1))), text)


def _format_default(value) -> str:
    if isinstance(value, (tuple, list)):
        value = ",".join(str(v) for v in value)
    return str(value).replace("%", "%%")


def add_config_flags(parser) -> None:
    """One flag per :class:`~seq2seq_keras.training.TrainConfig` field: its name, type, default and help.

    ``embedding_dim`` becomes ``--embedding-dim``; a ``bool`` field is a switch (``--subword``, or
    ``--no-input-feeding`` for a ``True`` default); ``X | None`` parses as ``X``; a ``Literal[...]``
    type gives the choices; ``tuple[int, ...]`` / ``list[int]`` parse ``5,10,15``. The field's
    ``metadata`` (written with :func:`seq2seq_keras.training.config.setting`) holds the help and may hold
    ``choices``, ``metavar``, ``flag`` (another flag name) and ``aliases`` (more flag names).
    Adding a field to ``TrainConfig`` adds its flag; nothing here names a field.
    """
    import dataclasses
    import typing

    from ..training.config import TrainConfig

    types = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        meta, flag = field.metadata, "--" + field.name.replace("_", "-")
        help_text = meta.get("help", "")
        if types[field.name] is bool:
            negative = field.default is True
            parser.add_argument(
                meta.get("flag", f"--no-{field.name.replace('_', '-')}" if negative else flag),
                dest=field.name,
                action="store_false" if negative else "store_true",
                default=field.default,
                help=help_text,
            )
            continue
        kind, choices = _flag_type(types[field.name])
        if field.default is not None:
            help_text += f" (default: {_format_default(field.default)})"
        parser.add_argument(
            meta.get("flag", flag),
            *meta.get("aliases", ()),
            dest=field.name,
            type=_field_type(kind, field, meta.get("flag", flag)),
            default=field.default,
            choices=meta.get("choices", choices),
            metavar=meta.get("metavar"),
            help=help_text,
            **{key: meta[key] for key in ("nargs", "const") if key in meta},
        )


def _flag_type(annotation):
    """``(type, choices)`` that argparse needs for a field annotated ``annotation``."""
    import types
    import typing

    args = [t for t in typing.get_args(annotation) if t is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return _flag_type(args[0]) if len(args) == 1 else (str, None)
    if typing.get_origin(annotation) is typing.Literal:
        return type(args[0]), tuple(args)
    if typing.get_origin(annotation) in (tuple, list):
        item, container = args[0], typing.get_origin(annotation)

        def parse(text: str):
            try:
                return container(item(x) for x in text.split(",") if x.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r}: give {item.__name__} values separated by commas") from None

        parse.__name__ = f"comma-separated {item.__name__}s"
        return parse, None
    return annotation, None


def add_decoding_flags(parser, options_class, names=None) -> None:
    """One flag per field of ``options_class`` (:class:`~seq2seq_keras.decoding.options.DecodingOptions`
    or a subclass), or of the fields in ``names``: name, type, choices and help from the field.

    Every flag defaults to ``None`` (left out: not passed on, the library's default applies; the
    help shows it). A ``bool`` field is a switch named by its ``flag`` (``--no-replace-unk``);
    a field with ``flag=None`` has none; ``unk_dictionary`` takes a file (read by the command).
    """
    import dataclasses
    import typing

    types = typing.get_type_hints(options_class)
    for field in dataclasses.fields(options_class):
        meta = field.metadata
        if (names is not None and field.name not in names) or ("flag" in meta and meta["flag"] is None):
            continue
        flag = meta.get("flag", "--" + field.name.replace("_", "-"))
        help_text = meta["help"]
        if field.default is not None and field.default != ():
            default = _format_default(field.default)
            help_text = (
                help_text.replace("{default}", default)
                if "{default}" in help_text
                else f"{help_text} (default: {default})"
            )
        if types[field.name] is bool:
            parser.add_argument(
                flag,
                dest=field.name,
                action="store_false" if field.default else "store_true",
                default=None,
                help=help_text,
            )
            continue
        kind = str if field.name == "unk_dictionary" else _flag_type(types[field.name])[0]
        parser.add_argument(
            flag,
            dest=field.name,
            type=_field_type(kind, field, flag),
            default=None,
            choices=meta.get("choices"),
            metavar=meta.get("metavar"),
            help=help_text,
        )


def given_decoding_options(args, options_class) -> dict:
    """``{field: value}`` of the :func:`add_decoding_flags` flags the user gave (``unk_dictionary``: the file's path)."""
    import dataclasses

    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(options_class)
        if getattr(args, f.name, None) is not None
    }


def train_config_from_args(args):
    """The :class:`TrainConfig` of parsed ``train`` flags (``zero_is_none`` fields: 0 -> None)."""
    import dataclasses

    from ..training.config import TrainConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("zero_is_none") and not values[f.name]:
            values[f.name] = None
    return TrainConfig(**values)
