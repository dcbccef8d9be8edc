"""Exact match per value of a swept axis at the seed level: one score per seed, their mean and
the 95% t interval over the seeds (run-to-run variance), shared by sweeps.png and the page."""

from __future__ import annotations

from dataclasses import dataclass

from reports.comparisons import build_configs
from reports.results import Results, hashable
from reports.stats import mean_std, t_test


@dataclass(frozen=True)
class SeedPoint:
    """One axis value: each seed's exact match in % (averaged over the other axes' settings),
    their mean, and the 95% t interval over the seeds (the mean itself with one seed)."""

    seeds: list[float]
    mean: float
    lo: float
    hi: float


def over_seeds(store: Results) -> bool:
    """Some configuration has two or more scored seeds: the sweeps are drawn at the seed level."""
    return any(len({c.repeat for c in cfg.scored}) >= 2 for cfg in build_configs(store))


def seed_points(store: Results, axis: str) -> dict[int, SeedPoint]:
    """Value position -> its seed-level point; per seed (repeat index, in order) the mean over
    the configurations at that value scored at that seed."""
    pos = {hashable(v): i for i, v in enumerate(store.axis_values[axis])}
    by_x: dict[int, dict[int, list[float]]] = {}
    for cfg in build_configs(store):
        x = pos[hashable(cfg.values[axis])]
        for c in cfg.scored:
            k, n = c.exact()
            by_x.setdefault(x, {}).setdefault(c.repeat, []).append(100 * k / n)
    out: dict[int, SeedPoint] = {}
    for x, seeds in by_x.items():
        values = [mean_std(scores)[0] for _, scores in sorted(seeds.items())]
        mean = mean_std(values)[0]
        lo, hi = t_test(values)[1] if len(values) >= 2 else (mean, mean)
        out[x] = SeedPoint(values, mean, max(lo, 0.0), min(hi, 100.0))
    return out
