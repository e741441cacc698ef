"""The feature-group mapping of each dataset MKT runs on, declared here and nowhere else."""

from __future__ import annotations

from recflow.mkt.features import FeatureMapping

SYNTHETIC = FeatureMapping(
    dataset="synthetic",
    source_entity="product",
    target_entity="post",
    user_profile=("user_id", "gender", "age"),
    entity_shared=("category",),
    entity_specific={"product": ("price", "brand"), "post": ("style", "length_words")},
    sequence_entities=("product", "post"),
    ignored_user_columns=("occupation",),
    ignored_item_columns=("title", "genres"),
    bucketized=("price", "length_words"),
    notes="products (source, 3x the volume) and content posts (target); label = click",
)

TENREC = FeatureMapping(
    dataset="tenrec",
    source_entity="video",
    target_entity="article",
    user_profile=("user_id", "gender", "age"),
    entity_shared=("category",),
    entity_specific={"video": (), "article": ()},
    sequence_entities=("video", "article"),
    ignored_user_columns=("occupation",),
    ignored_item_columns=("title", "genres", "source_item_id"),
    label_column="like",
    click_column="label",
    timestamps_are_positions=True,
    notes="QK-video (source) and QK-article (target); label = like, sequences of clicks",
)

MAPPINGS: dict[str, FeatureMapping] = {m.dataset: m for m in (SYNTHETIC, TENREC)}


def mapping_for(dataset: str) -> FeatureMapping:
    """The declared mapping of ``dataset``; a clear error for an unknown one."""
    try:
        return MAPPINGS[dataset]
    except KeyError:
        raise KeyError(
            f"no MKT feature mapping declared for dataset {dataset!r}; known: {sorted(MAPPINGS)}"
        ) from None
