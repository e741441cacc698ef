"""A tiny dataset with known structure for the sequence tests.

Items belong to clusters (cluster = item index mod n_clusters). Each user has a gender;
"f" users consume from the first half of the clusters, "m" users from the second. A
sequence is a Markov chain: stay in the current cluster with probability ``stay``, else
jump to a random cluster of the user's half. So gender is readable from which items a
user consumed, and item clusters are learnable from co-consumption, the structure next-
item pretraining is meant to pick up.
"""

from __future__ import annotations

import numpy as np
import polars as pl

ITEM_ID_OFFSET = 1000


def planted_sequences(
    n_users: int,
    n_items: int = 400,
    n_clusters: int = 8,
    seq_len: int = 20,
    stay: float = 0.8,
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(interactions, users) in canonical columns; timestamps are positions."""
    rng = np.random.default_rng(seed)
    gender = rng.integers(0, 2, n_users)  # 0 = f, 1 = m
    half = n_clusters // 2
    items_per_cluster = n_items // n_clusters
    rows_user, rows_item, rows_time = [], [], []
    for u in range(n_users):
        cluster = gender[u] * half + rng.integers(0, half)
        for t in range(seq_len):
            if rng.random() > stay:
                cluster = gender[u] * half + rng.integers(0, half)
            item = cluster + n_clusters * rng.integers(0, items_per_cluster)
            rows_user.append(u)
            rows_item.append(ITEM_ID_OFFSET + item)
            rows_time.append(t)
    interactions = pl.DataFrame(
        {
            "user_id": np.asarray(rows_user, dtype=np.int64),
            "item_id": np.asarray(rows_item, dtype=np.int64),
            "timestamp": np.asarray(rows_time, dtype=np.int64),
            "label": np.ones(len(rows_user)),
            "event": ["click"] * len(rows_user),
            "entity": ["product"] * len(rows_user),
        }
    )
    users = pl.DataFrame(
        {
            "user_id": np.arange(n_users, dtype=np.int64),
            "gender": np.where(gender == 0, "f", "m").tolist(),
        }
    )
    return interactions, users
