"""Typed results: the metrics list, an evaluation's result and an experiment's records.

``EVAL_METRICS`` is the one list of scalar evaluation metrics: the evaluation fills one
value per entry, and the training logs, checkpoint summaries, experiment records, reports
and plots all iterate over it. Adding a metric touches two places: an entry here and its
computation in ``train.evaluate``.

On disk the records stay plain JSON (``results.json`` is a list of flat objects, one per
trial, strategy and cycle); ``CycleRecord.from_json`` reads them back and refuses, with
the file and the missing keys named, a file written by something else.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Metric:
    """A scalar metric.

    Attributes:
      name: key in results, logs (``eval/<name>``) and JSON files.
      title: label in tables and plots.
      plot: whether reports draw its curve against the labeled fraction.
    """

    name: str
    title: str
    plot: bool = True


EVAL_METRICS: tuple[Metric, ...] = (
    Metric("map", "mAP@[.50:.95]"),
    Metric("ap50", "AP50", plot=False),
    Metric("miou", "mIoU"),
)
"""Scalar metrics of one evaluation (paper IV-A: COCO mAP and AP50, mIoU), in report order."""

MDSQ = Metric("mdsq", "mDSQ")
"""The multi-task score of the paper's Eq. 4, relative to the full-data reference."""

RECORD_METRICS: tuple[Metric, ...] = (MDSQ, *EVAL_METRICS)
"""Metrics of an experiment's record: mDSQ, then the evaluation metrics."""


def metric_names(metrics: Sequence[Metric] = EVAL_METRICS) -> tuple[str, ...]:
    """The ``name`` of each metric."""
    return tuple(m.name for m in metrics)


class RecordFormatError(ValueError):
    """A results file that this version cannot read, with the file and the problem."""


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """The evaluation of one model on one split (``train.evaluate.evaluate``).

    Attributes:
      metrics: one float per ``EVAL_METRICS`` name.
      per_class_ap: [C_det] COCO AP per detection class (NaN for classes without ground truth).
      per_class_iou: [C_seg] IoU per segmentation class (NaN for absent classes).
      losses: [N, 2] per-image (detection, segmentation) losses, or None.
      index: [N] split index of each row of ``losses``, or None.
    """

    metrics: dict[str, float]
    per_class_ap: list[float]
    per_class_iou: list[float]
    losses: np.ndarray | None = None
    index: np.ndarray | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready metrics and per-class values (no per-image arrays)."""
        return {
            **{name: self.metrics[name] for name in metric_names()},
            "per_class_ap": list(self.per_class_ap),
            "per_class_iou": list(self.per_class_iou),
        }


@dataclasses.dataclass(frozen=True)
class RunResult:
    """The best checkpoint of a training run (``train.loop.train``).

    Attributes:
      metrics: one float per ``EVAL_METRICS`` name.
      metric: the value of the run's best-checkpoint criterion.
      step: the checkpoint's training step.
      per_class_ap: [C_det] AP per detection class.
      per_class_iou: [C_seg] IoU per segmentation class.
      variables: host copy of the model variables (``{"params", "batch_stats"}``).
      resumed_seconds: wall seconds earlier sessions spent training the run, up to the
        checkpoint this session resumed from (0 when it trained from the start or read an
        archived run back); the run's wall time is this plus the resuming session's.
    """

    metrics: dict[str, float]
    metric: float
    step: int
    per_class_ap: list[float]
    per_class_iou: list[float]
    variables: Any = None
    resumed_seconds: float = 0.0

    @classmethod
    def from_summary(
        cls, summary: Mapping[str, Any], variables: Any = None, source: str = "checkpoint"
    ) -> RunResult:
        """From an evaluation summary (checkpoint metadata or ``metrics.json``).

        Raises:
          RecordFormatError: naming ``source`` and the missing keys.
        """
        missing = [k for k in (*metric_names(), "metric", "step") if k not in summary]
        if missing:
            raise RecordFormatError(
                f"{source}: the checkpoint summary lacks {missing} (written by an older or "
                "another version; train it again in a new directory)"
            )
        return cls(
            metrics={name: float(summary[name]) for name in metric_names()},
            metric=float(summary["metric"]),
            step=int(summary["step"]),
            per_class_ap=list(summary.get("per_class_ap", [])),
            per_class_iou=list(summary.get("per_class_iou", [])),
            variables=variables,
        )


@dataclasses.dataclass(frozen=True)
class CycleRecord:
    """One point of an active-learning curve: a trial's strategy after one cycle.

    Attributes:
      trial: trial id.
      strategy: strategy name (as in the run directory).
      cycle: AL cycle (0 = the shared initial model).
      labeled_fraction: labeled share of the pool in [0, 1].
      labeled_ids: sorted pool indices of the labeled set.
      metrics: one float per ``RECORD_METRICS`` name (mDSQ NaN without a reference).
    """

    trial: int
    strategy: str
    cycle: int
    labeled_fraction: float
    labeled_ids: list[int]
    metrics: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object of ``results.json``."""
        return {
            "trial": self.trial,
            "strategy": self.strategy,
            "cycle": self.cycle,
            "labeled_fraction": self.labeled_fraction,
            "labeled_ids": list(self.labeled_ids),
            **{name: self.metrics[name] for name in metric_names(RECORD_METRICS)},
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], source: str = "results.json") -> CycleRecord:
        """Reads one record of ``results.json``.

        Metrics this version knows but the record lacks (a run made before the metric was
        added) read as NaN; a record without its identifying keys is refused.

        Raises:
          RecordFormatError: naming ``source`` and the missing keys.
        """
        if not isinstance(obj, Mapping):
            raise RecordFormatError(f"{source}: a record is {type(obj).__name__}, not an object")
        missing = [k for k in ("trial", "strategy", "cycle", "labeled_fraction") if k not in obj]
        if missing:
            raise RecordFormatError(
                f"{source}: a record lacks {missing}; it was not written by mtal_jax's experiment "
                "(expected trial, strategy, cycle, labeled_fraction and the metrics)"
            )
        return cls(
            trial=obj["trial"],
            strategy=str(obj["strategy"]),
            cycle=int(obj["cycle"]),
            labeled_fraction=float(obj["labeled_fraction"]),
            labeled_ids=list(obj.get("labeled_ids", [])),
            metrics={m: _float(obj.get(m)) for m in metric_names(RECORD_METRICS)},
        )


def as_records(items: Sequence[Any], source: str = "results.json") -> list[CycleRecord]:
    """``CycleRecord``s from records or their JSON objects (mixed is fine)."""
    return [r if isinstance(r, CycleRecord) else CycleRecord.from_json(r, source) for r in items]


def _float(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


@dataclasses.dataclass(frozen=True)
class StrategySummary:
    """One strategy's curves over trials and its label efficiency (``reporting.summarize``).

    Attributes:
      fractions: sorted labeled fractions of the mean curve's points.
      trials: trial ids.
      num_trials: [P] trials averaged at each fraction.
      means: per ``RECORD_METRICS`` name, [P] mean over trials (NaN skipped): over the
        finished trials once one has finished (a running trial has only its early points).
      stds: per ``RECORD_METRICS`` name, [P] sample std over trials.
      le95_mean_curve: labeled fraction at which the mean mDSQ curve reaches 95 %.
      le95_per_trial: the same per trial (NaN when not reached).
      last_fraction_per_trial: per trial, the labeled fraction of its curve's last point.
      finished_per_trial: per trial, whether its curve has the experiment's last cycle (a
        trial still running has not; ``paired.label_efficiency_savings`` compares only
        finished curves).
      le95_trials_reached: trials that reach it.
      le95_trials_known: trials whose outcome is known: they reach it, or they have
        finished (a trial still running that has not reached it yet is not counted).
      le95_trial_mean: mean of ``le95_per_trial`` over the trials that reach it.
      le95_trial_std: their std.
      savings_vs_random: random's ``le95_mean_curve`` minus this one's.
      reach_random_final: labeled fraction at which the mean mDSQ curve reaches random's
        final mean mDSQ.
      savings_at_random_final: random's ``reach_random_final`` minus this one's.
      gain_vs_random_per_trial: per trial, mean mDSQ of cycles 1.. minus random's.
      gain_vs_random_mean: their mean.
      gain_vs_random_std: their std.
    """

    fractions: list[float]
    trials: list[Any]
    num_trials: list[int]
    means: dict[str, list[float]]
    stds: dict[str, list[float]]
    le95_mean_curve: float
    le95_per_trial: list[float]
    last_fraction_per_trial: list[float]
    finished_per_trial: list[bool]
    le95_trials_reached: int
    le95_trials_known: int
    le95_trial_mean: float
    le95_trial_std: float
    savings_vs_random: float
    reach_random_final: float
    savings_at_random_final: float
    gain_vs_random_per_trial: list[float]
    gain_vs_random_mean: float
    gain_vs_random_std: float

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> StrategySummary:
        """From the flat form of ``to_json`` (``<metric>_mean`` / ``<metric>_std`` keys)."""
        names = metric_names(RECORD_METRICS)
        scalar = {
            f.name: fields[f.name]
            for f in dataclasses.fields(cls)
            if f.name not in ("means", "stds")
        }
        return cls(
            means={m: list(fields[f"{m}_mean"]) for m in names},
            stds={m: list(fields[f"{m}_std"]) for m in names},
            **scalar,
        )

    def to_json(self) -> dict[str, Any]:
        """The flat form of ``summary.json`` (``<metric>_mean`` and ``<metric>_std`` lists)."""
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("means", "stds")
        }
        for m in metric_names(RECORD_METRICS):
            out[f"{m}_mean"] = self.means[m]
            out[f"{m}_std"] = self.stds[m]
        return out
