"""Downstream tasks that a pretrained sequence encoder is fine-tuned on (PeterRec, Sec. 4).

Both tasks read a user's source-domain behaviour (the last ``max_len − 1`` items, then
CLS) and split users, never events, into train/valid/test (``split_by_user``), so test
users are unseen while fine-tuning.

- ``AttributeTask``: predict a user attribute (gender, age group, occupation) from the
  sequence. Metrics: accuracy, macro-F1 and log loss (methods only); baselines: the
  majority class and a logistic regression on the bag of items of the same window
  (scikit-learn).
- ``ColdStartTask``: recommend target-domain items to users known only by their source
  behaviour. Each (train user, target item) pair is one example of a softmax over target
  items. Metrics per held-out (user, item) pair: HR@5, NDCG@5 and MRR against 99 sampled
  negatives the user did not consume (seeded); per user: recall@20 over all target items.
  Baseline: target-item popularity among train users.

  Negatives rule: when a user has consumed so many target items that fewer than
  ``n_negatives`` unseen ones remain, that user's pairs are ranked against *all* their
  unseen target items (full ranking) instead of a sample; ``full_rank_share`` in the
  metrics says for which share of pairs this rule ran (0 = every pair sampled).

``TaskSpec`` holds every choice that builds the tasks (attributes, negatives, shares, split
seed). ``split_users`` checks the data against it (failing with a message naming the
setting to change) and assigns each task's users to train/valid/test once; the result is
stored, and ``tasks_from_splits`` rebuilds the tasks from it for every method and
baseline (``build_tasks`` = both steps).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from torch import nn

from recflow.data.validate import DataValidationError
from recflow.metrics import (
    accuracy,
    hit_rate_at_k,
    macro_f1,
    mrr,
    ndcg_from_rank,
    recall_at_k,
)
from recflow.seq.finetune import FinetuneSettings, LabelledSequences, Readout, predict_scores
from recflow.seq.sequences import (
    FIRST_ITEM_TOKEN,
    ItemIndex,
    RaggedTokens,
    split_by_user,
    with_cls,
)

SPLITS = ("train", "valid", "test")


def user_windows(sequences: pl.DataFrame, index: ItemIndex, max_len: int) -> np.ndarray:
    """The last ``max_len − 1`` items of each row, left-padded, then CLS: (N, max_len)."""
    ragged = RaggedTokens.from_items(sequences.get_column("items"), index)
    return with_cls(ragged.last(np.arange(len(ragged)), max_len))


def bag_of_items(tokens: np.ndarray, n_tokens: int) -> sparse.csr_matrix:
    """Binary user × token matrix of the item tokens in each row (PAD and CLS dropped)."""
    rows, cols = np.nonzero(tokens >= FIRST_ITEM_TOKEN)
    m = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, tokens[rows, cols])),
        shape=(len(tokens), n_tokens),
    )
    m.data[:] = 1.0  # duplicates summed by the constructor count once
    return m


ATTRIBUTE_FINETUNE = FinetuneSettings(
    readout=Readout.MEAN,
    item_dropout=0.5,
    min_steps_per_epoch=16,
    select_by="log_loss",
    select_mode="min",
)
"""How attribute tasks are fine-tuned (``AttributeTask``'s docstring says why)."""


def mean_log_loss(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean −log softmax(scores)_y over rows: the cross-entropy fine-tuning minimises."""
    if len(labels) == 0:
        return float("nan")
    z = scores.astype(np.float64) - scores.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


@dataclass(frozen=True)
class AttributeTask:
    """User-attribute prediction: one LabelledSequences per split and the class names.

    ``finetune_settings`` (default ``ATTRIBUTE_FINETUNE``) is how every method is
    fine-tuned on it. Measured on the ML-100K-format generator (943 users: 660 train, 94
    valid, 189 test; gender 70/30), fine_all and scratch, test accuracy over split seeds
    0-9 (logistic regression 0.718, majority 0.714):

    - mean readout: a linear probe on the pretrained CLS state has test AUC 0.47-0.54 for
      gender, and a CLS head fine-tuned with the whole network memorises the train users
      within ~12 Adam steps (train AUC >= 0.99) while test AUC stays 0.46-0.52; the mean
      over non-PAD positions reads every item of the window, as the bag-of-items model does.
    - ``min_steps_per_epoch`` 16: 660 users at batch 128 are 6 steps a pass, so 5 epochs
      were 30 Adam steps (mean readout, 3 seeds: test AUC 0.57 -> 0.66 fine_all,
      0.56 -> 0.73 scratch).
    - ``item_dropout`` 0.5 and selection by validation log loss (accuracy on ~94 users moves
      in steps of ~1 %): 0.708 / 0.709 -> 0.723 / 0.731.

    The frozen-backbone methods (fine_cls, PeterRec) stay near the majority class: the
    mean of the frozen pretrained item embeddings has probe AUC 0.62-0.67 against 0.69-0.78
    for the bag of items, so no head or patch can read more out of them.
    """

    name: str
    classes: list[str]
    splits: dict[str, LabelledSequences]
    n_tokens: int
    primary_metric: str = "accuracy"
    finetune_settings: FinetuneSettings = ATTRIBUTE_FINETUNE

    @property
    def n_outputs(self) -> int:
        return len(self.classes)

    @property
    def train(self) -> LabelledSequences:
        return self.splits["train"]

    def evaluate(self, model: nn.Module, split: str = "test") -> dict[str, float]:
        """Accuracy and macro-F1 of the argmax class, and the mean log loss."""
        data = self.splits[split]
        scores = predict_scores(model, data.tokens)
        predicted = scores.argmax(axis=1)
        return {
            "accuracy": accuracy(data.labels, predicted),
            "macro_f1": macro_f1(data.labels, predicted),
            "log_loss": mean_log_loss(data.labels, scores),
        }

    def baselines(self, split: str = "test", seed: int = 0) -> dict[str, dict[str, float]]:
        """Majority class and logistic regression on the bag of items (trained on train).

        Their log loss is comparable with the methods': the majority row predicts the
        train class frequencies (add-one smoothed), the logistic regression its
        probabilities (a class it never saw gets the same floor, and the row is renormalised)."""
        train, test = self.train, self.splits[split]
        counts = np.bincount(train.labels, minlength=self.n_outputs).astype(np.float64)
        prior = np.log((counts + 1.0) / (counts.sum() + self.n_outputs))
        out = {
            "majority": self._scores(
                test.labels, np.full(len(test), counts.argmax()), np.tile(prior, (len(test), 1))
            )
        }
        clf = LogisticRegression(max_iter=2000, random_state=seed)
        clf.fit(bag_of_items(train.tokens, self.n_tokens), train.labels)
        bag = bag_of_items(test.tokens, self.n_tokens)
        proba = np.full((len(test), self.n_outputs), 1.0 / (counts.sum() + self.n_outputs))
        proba[:, clf.classes_] = clf.predict_proba(bag)
        out["logreg_bag_of_items"] = self._scores(test.labels, clf.predict(bag), np.log(proba))
        return out

    @staticmethod
    def _scores(
        labels: np.ndarray, predicted: np.ndarray, log_proba: np.ndarray
    ) -> dict[str, float]:
        return {
            "accuracy": accuracy(labels, predicted),
            "macro_f1": macro_f1(labels, predicted),
            "log_loss": mean_log_loss(labels, log_proba),
        }


def attribute_labels(
    users: pl.DataFrame, attribute: str, bins: list[float] | None = None
) -> pl.DataFrame:
    """(user_id, label) with the attribute as text; ``bins`` groups a numeric attribute
    into ranges ("<18", "18-24", ..., "56+" for bins [18, 25, ..., 56]). Nulls dropped."""
    if attribute not in users.columns:
        raise DataValidationError("users", attribute, "attribute column not present", users.height)
    df = users.select("user_id", pl.col(attribute).alias("value")).drop_nulls("value")
    if df.height == 0:
        raise DataValidationError("users", attribute, "no user has this attribute", users.height)
    if bins is None:
        return df.select("user_id", pl.col("value").cast(pl.String).alias("label"))
    edges = sorted(bins)
    names = [f"<{edges[0]:g}"]
    names += [f"{a:g}-{b:g}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    names.append(f"{edges[-1]:g}+")
    codes = np.searchsorted(
        np.asarray(edges, dtype=np.float64), df.get_column("value").to_numpy(), side="right"
    )
    return df.select("user_id").with_columns(
        pl.Series("label", [names[c] for c in codes], dtype=pl.String)
    )


def labelled_users(
    sequences: pl.DataFrame, users: pl.DataFrame, attribute: str, bins: list[float] | None = None
) -> pl.DataFrame:
    """Users with both a sequence and the attribute (sequence columns + ``label``), by user_id."""
    labelled = sequences.join(attribute_labels(users, attribute, bins), on="user_id", how="inner")
    if labelled.height < 10:
        raise DataValidationError(
            "sequences×users",
            attribute,
            "fewer than 10 users with a sequence and the attribute",
            labelled.height,
        )
    return labelled.sort("user_id")


def _attribute_from_split(
    attribute: str, labelled: pl.DataFrame, index: ItemIndex, max_len: int
) -> AttributeTask:
    """The task of ``labelled`` users (``labelled_users`` with a ``split`` column)."""
    classes = sorted(labelled.get_column("label").unique().to_list())
    splits = {}
    for name in SPLITS:
        part = labelled.filter(pl.col("split") == name)
        codes = np.searchsorted(
            np.asarray(classes, dtype=object), part.get_column("label").to_numpy()
        )
        splits[name] = LabelledSequences(user_windows(part, index, max_len), codes.astype(np.int64))
    return AttributeTask(f"attribute:{attribute}", classes, splits, index.n_tokens)


def attribute_task(
    sequences: pl.DataFrame,
    users: pl.DataFrame,
    attribute: str,
    index: ItemIndex,
    max_len: int,
    *,
    bins: list[float] | None = None,
    valid_share: float = 0.1,
    test_share: float = 0.2,
    seed: int = 0,
) -> AttributeTask:
    """Users with both a sequence and the attribute, split by user."""
    labelled = split_by_user(
        labelled_users(sequences, users, attribute, bins), valid_share, test_share, seed
    )
    return _attribute_from_split(attribute, labelled, index, max_len)


@dataclass(frozen=True)
class ColdStartTask:
    """Target-domain recommendation from source behaviour.

    ``target_items[c]`` is the item id of output class c. Per split, ``tokens`` (U, T) are
    the users' windows and ``relevant[u]`` their target classes; ``train`` expands the
    train users into one example per (user, target item).
    """

    name: str
    target_items: np.ndarray  # (n_classes,) item ids
    tokens: dict[str, np.ndarray]
    relevant: dict[str, list[np.ndarray]]
    train: LabelledSequences
    n_negatives: int = 99
    seed: int = 0
    primary_metric: str = "ndcg@5"

    @property
    def n_outputs(self) -> int:
        return len(self.target_items)

    def evaluate(self, model: nn.Module, split: str = "test") -> dict[str, float]:
        return self.score(predict_scores(model, self.tokens[split]), split)

    def score(self, scores: np.ndarray, split: str = "test") -> dict[str, float]:
        """Metrics of a (users, n_classes) score matrix for ``split``."""
        rng = np.random.default_rng(self.seed)
        n = self.n_outputs
        ranks, recalls = [], []
        full = 0
        for u, rel in enumerate(self.relevant[split]):
            pool = np.setdiff1d(np.arange(n), rel)
            for pos in rel:
                if len(pool) < self.n_negatives:  # the documented rule: full ranking
                    neg, full = pool, full + 1
                else:
                    neg = rng.choice(pool, self.n_negatives, replace=False)
                # 0-based rank; ties count against the positive (as ``rank_of_positive``)
                ranks.append(int((scores[u, neg] >= scores[u, pos]).sum()))
            top = np.argsort(-scores[u], kind="stable")[:20]
            recalls.append(recall_at_k(top, rel, 20))
        rank = np.asarray(ranks)
        return {
            "hr@5": hit_rate_at_k(rank, 5),
            "ndcg@5": ndcg_from_rank(rank, 5),
            "mrr": mrr(rank),
            "recall@20": float(np.mean(recalls)),
            "full_rank_share": full / max(len(ranks), 1),
        }

    def baselines(self, split: str = "test", seed: int = 0) -> dict[str, dict[str, float]]:
        """Popularity: every user gets the target items ranked by train-user counts."""
        counts = np.bincount(self.train.labels, minlength=self.n_outputs).astype(np.float64)
        # a tiny seeded jitter breaks ties between equally popular items at random
        jitter = np.random.default_rng(seed).random(self.n_outputs) * 1e-3
        users = len(self.relevant[split])
        return {"popularity": self.score(np.tile(counts + jitter, (users, 1)), split)}


def cold_start_users(
    source_sequences: pl.DataFrame, target_interactions: pl.DataFrame
) -> pl.DataFrame:
    """Users with a source sequence and at least one target item (sequence columns +
    ``target_ids``, sorted), by user_id."""
    targets = (
        target_interactions.select("user_id", "item_id")
        .unique()
        .group_by("user_id")
        .agg(pl.col("item_id").sort().alias("target_ids"))
    )
    users = source_sequences.join(targets, on="user_id", how="inner").sort("user_id")
    if users.height < 10:
        raise DataValidationError(
            "sequences×target",
            "user_id",
            "fewer than 10 users with source and target behaviour",
            users.height,
        )
    return users


def _cold_start_from_split(
    users: pl.DataFrame,
    target_interactions: pl.DataFrame,
    index: ItemIndex,
    max_len: int,
    *,
    name: str,
    n_negatives: int,
    seed: int,
) -> ColdStartTask:
    """The task of ``users`` (``cold_start_users`` with a ``split`` column)."""
    target_items = np.unique(target_interactions.get_column("item_id").to_numpy())
    tokens, relevant = {}, {}
    train = None
    for split in SPLITS:
        part = users.filter(pl.col("split") == split)
        tokens[split] = user_windows(part, index, max_len)
        relevant[split] = [
            np.searchsorted(target_items, np.asarray(ids))
            for ids in part.get_column("target_ids").to_list()
        ]
        if split == "train":
            per_user = np.array([len(r) for r in relevant[split]], dtype=np.int64)
            train = LabelledSequences(
                np.repeat(tokens[split], per_user, axis=0),
                np.concatenate(relevant[split]).astype(np.int64),
            )
    assert train is not None
    return ColdStartTask(name, target_items, tokens, relevant, train, n_negatives, seed)


def cold_start_task(
    source_sequences: pl.DataFrame,
    target_interactions: pl.DataFrame,
    index: ItemIndex,
    max_len: int,
    *,
    name: str = "cold_start",
    valid_share: float = 0.1,
    test_share: float = 0.2,
    n_negatives: int = 99,
    seed: int = 0,
) -> ColdStartTask:
    """Users with a source sequence and at least one target item, split by user."""
    users = split_by_user(
        cold_start_users(source_sequences, target_interactions), valid_share, test_share, seed
    )
    return _cold_start_from_split(
        users, target_interactions, index, max_len, name=name, n_negatives=n_negatives, seed=seed
    )


@dataclass(frozen=True)
class TaskSpec:
    """Every choice that turns a dataset's sequences into downstream tasks.

    ``attributes``: user column → age-style bins (None = the values are the classes).
    Users are split once by ``split_seed`` and every method and baseline sees the same
    split. A task whose train, valid or test part would hold fewer than
    ``min_users_per_split`` users is an error, not a silently noisy number.
    """

    attributes: dict[str, list[float] | None] = field(default_factory=dict)
    n_negatives: int = 99
    valid_share: float = 0.1
    test_share: float = 0.2
    split_seed: int = 0
    min_users_per_split: int = 5

    def __post_init__(self) -> None:
        if self.n_negatives < 1:
            raise ValueError(f"n_negatives must be >= 1, got {self.n_negatives}")
        if not (
            self.valid_share > 0 and self.test_share > 0 and self.valid_share + self.test_share < 1
        ):
            raise ValueError(
                f"valid_share {self.valid_share} and test_share {self.test_share} must be "
                "positive and sum to less than 1"
            )

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> TaskSpec:
        return cls(**d)


class TaskPreconditionError(ValueError):
    """The data cannot feed a task as configured; the message names the setting to change."""


def _check_split_sizes(task: str, labels: pl.DataFrame, spec: TaskSpec, hint: str) -> None:
    counts = {p: labels.filter(pl.col("split") == p).height for p in SPLITS}
    short = {p: n for p, n in counts.items() if n < spec.min_users_per_split}
    if short:
        raise TaskPreconditionError(
            f"{task}: {counts} users per split; every split needs >= "
            f"{spec.min_users_per_split} (min_users_per_split). Raise valid_share/test_share, "
            f"{hint}, or lower min_users_per_split in the seq_downstream_splits config."
        )


COLD_START = "cold_start"
SPLIT_COLUMNS = ("task", "user_id", "split", "label")
"""Columns of a user split (``split_users``): one row per (task, user); ``label`` is the
attribute's class (null for cold start)."""


def split_users(
    spec: TaskSpec, sequences: pl.DataFrame, target_events: pl.DataFrame, users: pl.DataFrame
) -> pl.DataFrame:
    """Assign the users of every downstream task to train/valid/test once (seeded by
    ``spec.split_seed``), checking that the data can feed each task: cold start, then one
    task per configured attribute. Raises ``TaskPreconditionError`` naming the setting to
    change. The result (``SPLIT_COLUMNS``) is what every method and baseline is built from."""
    n_target_items = target_events.get_column("item_id").n_unique()
    if n_target_items < 2:
        raise TaskPreconditionError(
            f"cold_start: the target domain has {n_target_items} item(s); it needs >= 2 "
            "(choose target_genres / target_entity in the seq_sequences config that cover more items)"
        )
    shares = (spec.valid_share, spec.test_share, spec.split_seed)
    cold = split_by_user(cold_start_users(sequences, target_events), *shares)
    _check_split_sizes(COLD_START, cold, spec, "choose target_genres with more users")
    parts = [cold.select("user_id", "split").with_columns(pl.lit(None, pl.String).alias("label"))]
    names = [COLD_START]
    for name, bins in spec.attributes.items():
        task = f"attribute:{name}"
        if name not in users.columns:
            raise TaskPreconditionError(
                f"{task}: the users table has no column {name!r} (it has "
                f"{users.columns}); remove it from attributes in the seq_downstream_splits config"
            )
        labelled = split_by_user(labelled_users(sequences, users, name, bins), *shares)
        _check_split_sizes(task, labelled, spec, f"or drop {name!r} from attributes")
        if labelled.filter(pl.col("split") == "train").get_column("label").n_unique() < 2:
            raise TaskPreconditionError(
                f"{task}: the train users hold one class only; drop {name!r} from "
                "attributes in the seq_downstream_splits config"
            )
        parts.append(labelled.select("user_id", "split", "label"))
        names.append(task)
    return pl.concat(
        [p.select(pl.lit(n).alias("task"), pl.all()) for n, p in zip(names, parts, strict=True)]
    ).select(SPLIT_COLUMNS)


def tasks_from_splits(
    spec: TaskSpec,
    sequences: pl.DataFrame,
    target_events: pl.DataFrame,
    splits: pl.DataFrame,
    index: ItemIndex,
    max_len: int,
) -> list[AttributeTask | ColdStartTask]:
    """The downstream tasks on the users ``split_users`` assigned (windows of ``max_len``
    tokens): the same tasks as ``build_tasks`` builds from the same data and spec."""

    def part(task: str) -> pl.DataFrame:
        rows = splits.filter(pl.col("task") == task)
        if rows.height == 0:
            raise TaskPreconditionError(
                f"{task}: the user split has no users for it (tasks {splits['task'].unique().to_list()}); "
                "materialize seq_downstream_splits again"
            )
        return rows.select("user_id", "split", "label")

    cold_users = cold_start_users(sequences, target_events)
    cold_users = cold_users.join(part(COLD_START).drop("label"), on="user_id", how="inner")
    tasks: list[AttributeTask | ColdStartTask] = [
        _cold_start_from_split(
            cold_users.sort("user_id"),
            target_events,
            index,
            max_len,
            name=COLD_START,
            n_negatives=spec.n_negatives,
            seed=spec.split_seed,
        )
    ]
    for name in spec.attributes:
        labelled = sequences.join(part(f"attribute:{name}"), on="user_id", how="inner")
        tasks.append(_attribute_from_split(name, labelled.sort("user_id"), index, max_len))
    return tasks


def build_tasks(
    spec: TaskSpec,
    sequences: pl.DataFrame,
    target_events: pl.DataFrame,
    users: pl.DataFrame,
    index: ItemIndex,
    max_len: int,
) -> list[AttributeTask | ColdStartTask]:
    """Every downstream task of a dataset (``split_users`` then ``tasks_from_splits``).
    Raises ``TaskPreconditionError`` when the data cannot feed one."""
    splits = split_users(spec, sequences, target_events, users)
    return tasks_from_splits(spec, sequences, target_events, splits, index, max_len)


def split_fingerprint(splits: pl.DataFrame, task: str, split: str = "test") -> str:
    """A short hash of the users ``splits`` puts in ``split`` of ``task``: two rows scored
    on the same users carry the same fingerprint."""
    ids = np.sort(
        splits.filter((pl.col("task") == task) & (pl.col("split") == split))
        .get_column("user_id")
        .to_numpy()
        .astype(np.int64)
    )
    return hashlib.sha256(ids.tobytes()).hexdigest()[:16]


def describe_tasks(tasks: list[AttributeTask | ColdStartTask]) -> list[dict]:
    """One row per task for metadata: users per split, classes, the negatives rule."""
    rows = []
    for t in tasks:
        if isinstance(t, ColdStartTask):
            pairs = [(len(r), t.n_outputs - len(r)) for p in SPLITS[1:] for r in t.relevant[p]]
            full = sum(n for n, unseen in pairs if unseen < t.n_negatives)
            rows.append(
                {
                    "task": t.name,
                    **{f"{p} users": len(t.relevant[p]) for p in SPLITS},
                    "classes": t.n_outputs,
                    "negatives rule": (
                        f"{t.n_negatives} sampled; full ranking for {full} of "
                        f"{sum(n for n, _ in pairs)} held-out pairs"
                    ),
                }
            )
        else:
            rows.append(
                {
                    "task": t.name,
                    **{f"{p} users": len(t.splits[p]) for p in SPLITS},
                    "classes": t.n_outputs,
                    "negatives rule": "",
                }
            )
    return rows
