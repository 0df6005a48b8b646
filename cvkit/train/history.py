"""Per-epoch training history: a list of rows, one per epoch (drawn by :func:`cvkit.viz.plot_history`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass
class History:
    """What happened in each epoch of :func:`cvkit.train.fit`.

    ``rows`` holds one dict per epoch with keys ``epoch`` (1-based), ``train_loss``,
    ``train_accuracy`` (when the step counts correct predictions), ``val_loss``,
    ``val_accuracy`` (when a validation loader was given), ``lr`` (at the epoch's end),
    ``seconds`` (wall time of the epoch, validation included), ``train_seconds`` (wall time of
    the training pass alone) and ``images_per_second`` (training throughput: images / train_seconds).

    ``history["val_accuracy"]`` gives one column as a list (``nan`` where missing).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)

    def append(self, row: dict[str, Any]) -> None:
        """Add one epoch's row."""
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: str) -> list[float]:
        if not self.rows or not any(key in r for r in self.rows):
            known = sorted({k for r in self.rows for k in r})
            raise KeyError(f"history has no column {key!r}; it has {known}")
        return [r.get(key, math.nan) for r in self.rows]

    @property
    def columns(self) -> list[str]:
        """Column names, in first-seen order."""
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.update(dict.fromkeys(r))
        return list(seen)

    @property
    def last(self) -> dict[str, Any]:
        """The final epoch's row (empty dict before the first epoch)."""
        return self.rows[-1] if self.rows else {}

    def best(self, key: str = "val_accuracy", mode: str = "max") -> dict[str, Any]:
        """The row with the best value of ``key`` (``mode`` ``"max"`` or ``"min"``).

        Raises:
            ValueError: unknown mode; KeyError: unknown column.
        """
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        values = self[key]
        pick = max if mode == "max" else min
        i = pick(
            range(len(values)),
            key=lambda j: values[j] if not math.isnan(values[j]) else (-math.inf if mode == "max" else math.inf),
        )
        return self.rows[i]

    def to_markdown(self, columns: Iterable[str] | None = None) -> str:
        """The history as a Markdown table (4 significant digits)."""
        cols = list(columns) if columns is not None else self.columns
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in self.rows:
            lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
        return "\n".join(lines)

    def state_dict(self) -> dict[str, Any]:
        """Serializable form (stored in checkpoints)."""
        return {"rows": [dict(r) for r in self.rows]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "History":
        """Inverse of :meth:`state_dict`."""
        return cls([dict(r) for r in state.get("rows", [])])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)
