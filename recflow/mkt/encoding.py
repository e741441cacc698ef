"""Categorical codes for every MKT feature, fitted on the training split only.

Code 0 is "missing" (a null value, or sequence padding), code 1 is "not seen in
training", and codes 2.. index the training vocabulary. Numeric columns named in the
mapping's ``bucketized`` become quantile-bucket ids, with edges from the training rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

MISSING = 0
UNSEEN = 1
FIRST_CODE = 2


@dataclass
class ColumnEncoder:
    """Maps one column's raw values to codes: a vocabulary, or quantile bucket edges."""

    vocabulary: list[str] = field(default_factory=list)
    bucket_edges: list[float] | None = None

    @property
    def size(self) -> int:
        """Number of codes, including MISSING and UNSEEN."""
        if self.bucket_edges is not None:
            return FIRST_CODE + len(self.bucket_edges) + 1
        return FIRST_CODE + len(self.vocabulary)

    @classmethod
    def fit(cls, values: pl.Series, *, buckets: int | None = None) -> ColumnEncoder:
        """Fit on training values (nulls ignored); ``buckets`` = quantile bucketing."""
        values = values.drop_nulls()
        if buckets is not None:
            x = values.cast(pl.Float64).to_numpy()
            if len(x) == 0:
                return cls(bucket_edges=[])
            qs = np.quantile(x, np.linspace(0, 1, buckets + 1)[1:-1])
            return cls(bucket_edges=[float(q) for q in np.unique(qs)])
        vocab = sorted(values.cast(pl.String).unique().to_list())
        return cls(vocabulary=vocab)

    def encode(self, values: pl.Series) -> np.ndarray:
        """Codes (int64) for ``values``: MISSING for nulls, UNSEEN for unknown values."""
        null = values.is_null().to_numpy()
        if self.bucket_edges is not None:
            x = values.cast(pl.Float64).fill_null(0.0).to_numpy()
            # bucket b = number of edges < x (buckets are (e_{b-1}, e_b]), code = 2 + b
            codes = FIRST_CODE + np.searchsorted(np.asarray(self.bucket_edges), x, side="left")
        else:
            lookup = pl.DataFrame(
                {"value": self.vocabulary, "code": np.arange(len(self.vocabulary)) + FIRST_CODE},
                schema={"value": pl.String, "code": pl.Int64},
            )
            frame = pl.DataFrame({"value": values.cast(pl.String)})
            joined = frame.join(lookup, on="value", how="left", maintain_order="left")
            codes = joined.get_column("code").fill_null(UNSEEN).to_numpy()
        return np.where(null, MISSING, codes).astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary, "bucket_edges": self.bucket_edges}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ColumnEncoder:
        return cls(vocabulary=list(obj["vocabulary"]), bucket_edges=obj["bucket_edges"])
