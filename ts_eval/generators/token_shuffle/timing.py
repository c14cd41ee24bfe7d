"""Marks on the device's timeline: CUDA events on GPU (synchronised once, at the end), perf_counter on CPU.

Each mark carries a label; an interval is labelled by the mark that ends it (e.g. the sampler's "prefill"
and "step" marks end the prefill and each decode step; the time before a "start" mark is a gap)."""

from __future__ import annotations

import time

import torch


class Clock:
    def __init__(self, device: torch.device | str):
        self.cuda = torch.device(device).type == "cuda"
        self.marks: list = []
        self.labels: list[str] = []

    def mark(self, label: str = "") -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())
        self.labels.append(label)

    def intervals(self) -> list[tuple[str, float]]:
        """(label of the ending mark, seconds) between consecutive marks."""
        if self.cuda:
            torch.cuda.synchronize()
            seconds = [a.elapsed_time(b) / 1000.0 for a, b in zip(self.marks, self.marks[1:])]
        else:
            seconds = [b - a for a, b in zip(self.marks, self.marks[1:])]
        return list(zip(self.labels[1:], seconds))

    def total(self, label: str) -> float:
        return sum(s for name, s in self.intervals() if name == label)

    def all(self, label: str) -> list[float]:
        return [s for name, s in self.intervals() if name == label]


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
