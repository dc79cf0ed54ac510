"""Ratios of two variants measured in the same rounds."""

from __future__ import annotations

import statistics
from typing import TypeVar

T = TypeVar("T")


def paired_ratio(numerators: list[float], denominators: list[float]) -> dict[str, float]:
    """The median of the per-round ratios, and their range.

    Each round runs the variants back to back, so a ratio within a round cancels
    most of what the machine was doing then; the median drops the odd round.
    """
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def take_turns(names: list[T], round_: int) -> list[T]:
    """The variants in order, reversed every other round (ABC CBA ...), so that a
    drift of the machine over the run does not favour whichever runs first."""
    return names if round_ % 2 == 0 else names[::-1]
