"""Library defaults for Dagster ``Config`` fields, so the Launchpad shows recflow's own."""

import dataclasses
from typing import Any


def library_defaults(config_class: type) -> dict[str, Any]:
    """``{field: default}`` of a recflow config dataclass (fields without a default omitted)."""
    return {
        f.name: f.default
        for f in dataclasses.fields(config_class)
        if f.default is not dataclasses.MISSING
    }
