"""Dagster ``Config`` classes generated from recflow's config dataclasses: one source.

A hyperparameter is declared once, as a field of a library dataclass (``ZslConfig``,
``TrainConfig``, …). ``config_class`` turns that dataclass into the ``dg.Config`` the
Launchpad shows (and ``dagster asset materialize --config-json`` reads), with the same
names, types and defaults, so the two can never drift. An asset may leave out a field
only by naming it in ``exclude`` with the reason (e.g. ``method``: fixed by the asset),
may change a default for its dataset with ``overrides``, and may add Dagster-only fields
with ``extra``. Every generated class is recorded in ``CONFIG_SOURCES``; a test checks
that each library field is reachable or excluded with a reason.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pydantic


@dataclass(frozen=True)
class ConfigSource:
    """Where a generated ``dg.Config`` came from (for the reachability test)."""

    config: type[dg.Config]
    library: tuple[type, ...]
    excluded: dict[str, str]  # library field → why the Launchpad does not set it


CONFIG_SOURCES: list[ConfigSource] = []


def _library_fields(library: type) -> list[tuple[str, Any, Any]]:
    hints = typing.get_type_hints(library)
    out = []
    for f in dataclasses.fields(library):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = ...
        if isinstance(default, tuple):  # Dagster config has lists, not tuples
            default = list(default)
        annotation = hints[f.name]
        if typing.get_origin(annotation) is tuple:
            args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
            annotation = list[args[0]] if args else list
        out.append((f.name, annotation, default))
    return out


def config_class(
    name: str,
    *library: type,
    exclude: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    extra: dict[str, tuple[Any, Any]] | None = None,
    doc: str | None = None,
) -> type[dg.Config]:
    """A ``dg.Config`` named ``name`` with every field of the ``library`` dataclasses.

    ``exclude``: field → reason it is not settable here; ``overrides``: field → this
    asset's default; ``extra``: field → (type, default) that only the asset reads. A field
    in two library classes must have the same default in both (one setting feeds both).
    """
    exclude = exclude or {}
    overrides = dict(overrides or {})
    fields: dict[str, tuple[Any, Any]] = {}
    for cls in library:
        for field, annotation, default in _library_fields(cls):
            if field in exclude:
                continue
            if field in fields and fields[field][1] != default and field not in overrides:
                raise ValueError(
                    f"{name}: field {field!r} has different defaults in the library classes "
                    f"({fields[field][1]!r} vs {default!r}); give it one in overrides"
                )
            fields[field] = (annotation, default)
    known = {f.name for cls in library for f in dataclasses.fields(cls)}
    unknown = (set(exclude) | set(overrides)) - known
    if unknown:
        raise ValueError(f"{name}: exclude/overrides name unknown fields {sorted(unknown)}")
    for field, value in overrides.items():
        fields[field] = (fields[field][0], value)
    for field, spec in (extra or {}).items():
        if field in fields:
            raise ValueError(f"{name}: extra field {field!r} is already a library field")
        fields[field] = spec
    caller = sys._getframe(1).f_globals.get("__name__", __name__)
    cls = pydantic.create_model(name, __base__=dg.Config, __module__=caller, **fields)
    cls.__doc__ = doc or (
        "Settings of " + ", ".join(c.__name__ for c in library) + " (recflow defaults)."
    )
    CONFIG_SOURCES.append(ConfigSource(cls, tuple(library), dict(exclude)))
    return cls


def library_kwargs(config: dg.Config, library: type, **fixed: Any) -> dict[str, Any]:
    """The keyword arguments of ``library`` found in ``config`` (lists back to tuples where
    the dataclass declares a tuple), plus ``fixed``; build it as ``library(**kwargs)``."""
    values = config.model_dump()
    hints = typing.get_type_hints(library)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(library):
        if f.name in fixed:
            out[f.name] = fixed[f.name]
        elif f.name in values:
            value = values[f.name]
            if typing.get_origin(hints[f.name]) is tuple and isinstance(value, list):
                value = tuple(value)
            out[f.name] = value
    return out
