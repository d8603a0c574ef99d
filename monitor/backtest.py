"""Backtesting predicted probabilities against outcomes: by grade, by decile, overall.

For a group of N facilities with D events (defaults) and a predicted probability p (the
group's mean prediction), two tests are used in supervisory PD validation:

- the one-sided **binomial test**: ``P(X >= D)`` for ``X ~ Binomial(N, p)``, the chance of at
  least as many events as observed if p were right;
- the **Jeffreys test**: the posterior of the event rate with a Jeffreys prior is
  ``Beta(D + 1/2, N - D + 1/2)``, and the p-value is its CDF at p, the posterior probability
  that the true rate is at most p (as the ECB's instructions for PD back-testing describe).

A small p-value means more events than the group promised. Both come from ``scipy.stats``;
the interval shown beside each observed rate is the Jeffreys equal-tailed interval. The tests
take the group's PD no lower than a floor (``floor``: the regulatory floor of 0.03% for a
PD used in capital, CRR Art. 160(1)): a model may rank a facility at 0.0001%, but one
default among a few hundred such facilities is not evidence of a broken grade.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from crm_modes.training.metrics import expected_calibration_error


def binomial_p_value(events: int, count: int, probability: float) -> float:
    """One-sided binomial test: ``P(X >= events)`` for ``X ~ Binomial(count, probability)``."""
    if events <= 0:
        return 1.0
    return float(stats.binom.sf(events - 1, count, probability))


def jeffreys_p_value(events: int, count: int, probability: float) -> float:
    """Jeffreys test: ``Beta(events + 1/2, count - events + 1/2).cdf(probability)``."""
    return float(stats.beta.cdf(probability, events + 0.5, count - events + 0.5))


def jeffreys_interval(events: int, count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Equal-tailed Jeffreys interval of an event rate (0 and 1 at the ends, as is usual)."""
    if count == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - confidence) / 2
    posterior = stats.beta(events + 0.5, count - events + 0.5)
    low = 0.0 if events == 0 else float(posterior.ppf(tail))
    high = 1.0 if events == count else float(posterior.ppf(1.0 - tail))
    return (low, high)


@dataclass(frozen=True)
class GroupBacktest:
    """Predicted against observed for one group (a grade, a decile)."""

    group: str
    count: int
    events: int
    predicted: float
    observed: float
    interval_low: float
    interval_high: float
    binomial_p: float
    jeffreys_p: float
    flag: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def backtest_groups(
    groups: np.ndarray,
    predicted: np.ndarray,
    outcome: np.ndarray,
    order: list[str],
    *,
    watch_p: float,
    act_p: float,
    confidence: float = 0.95,
    floor: float = 0.0,
) -> list[GroupBacktest]:
    """Per group (in ``order``; groups without rows left out): count, events, mean prediction,
    observed rate with its Jeffreys interval, both tests at the mean prediction (at least
    ``floor``); flagged on the Jeffreys p-value (``act`` below ``act_p``, ``watch`` below ``watch_p``)."""
    results = []
    for group in order:
        rows = groups == group
        count = int(rows.sum())
        if count == 0:
            continue
        events = int(outcome[rows].sum())
        mean = float(predicted[rows].mean())
        tested = max(mean, floor)
        low, high = jeffreys_interval(events, count, confidence)
        jeffreys = jeffreys_p_value(events, count, tested)
        level = "act" if jeffreys < act_p else "watch" if jeffreys < watch_p else "ok"
        results.append(
            GroupBacktest(
                str(group),
                count,
                events,
                mean,
                events / count,
                low,
                high,
                binomial_p_value(events, count, tested),
                jeffreys,
                level,
            )
        )
    return results


def deciles(predicted: np.ndarray) -> np.ndarray:
    """Decile of each prediction (``"1"`` lowest to ``"10"``), cut at the predictions' own quantiles."""
    edges = np.quantile(predicted, np.linspace(0, 1, 11)[1:-1])
    return (np.searchsorted(edges, predicted, side="right") + 1).astype(str)


def discrimination(predicted: np.ndarray, outcome: np.ndarray) -> dict[str, float]:
    """AUC, Gini (2 AUC - 1) and the expected calibration error; AUC and Gini NaN with one class."""
    ece = expected_calibration_error(outcome, predicted) if predicted.size else float("nan")
    if np.unique(outcome).size < 2:
        return {"auc": float("nan"), "gini": float("nan"), "ece": ece}
    auc = float(roc_auc_score(outcome, predicted))
    return {"auc": auc, "gini": 2 * auc - 1, "ece": ece}
