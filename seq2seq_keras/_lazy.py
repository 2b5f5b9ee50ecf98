"""Lazy package attributes (PEP 562): a package names what it offers, and the defining module is imported on
first access. Importing a package therefore imports neither Keras nor TensorFlow."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package`` whose public names live in its submodules.

    ``exports`` maps a public name to the submodule (relative to ``package``) that defines it. Any other
    attribute that names a submodule imports it, as ``import package.submodule`` would.
    """

    def __getattr__(name: str):
        module = importlib.import_module(package)
        if name in exports:
            value = getattr(importlib.import_module(f".{exports[name]}", package), name)
            setattr(module, name, value)  # later look-ups skip this function
            return value
        if name.startswith("__"):  # probes such as __wrapped__ are not submodules
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            return importlib.import_module(f".{name}", package)
        except ModuleNotFoundError as e:
            if e.name != f"{package}.{name}":
                raise  # the submodule exists but one of its imports is missing: say so
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(exports))

    return __getattr__, __dir__
