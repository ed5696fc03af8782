"""Summarise a py-spy raw (collapsed stacks) profile: where the worker's time goes.

Usage: python bench/profile_summary.py bench/profiles/postgres-get.txt [TOP]
Prints, per function, the share of samples it is on the stack for (inclusive) and at the top
of (self), for couponry's own code and the libraries it calls.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def summarise(path: Path, top: int = 30) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for f in stack.split(";")
        ]
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples", "", "inclusive  self  function"]
    for frame, count in inclusive.most_common(top):
        lines.append(f"{count / total:8.1%} {own[frame] / total:6.1%}  {frame}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 30))
