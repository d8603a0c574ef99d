"""What a relationship mode earns and costs: the 12-month expected value of a facility per mode.

The source article's trade-off, priced. Responsible mode costs the most to run but keeps
clients and cuts losses; basic mode is cheap and loses clients; reactive sits between.
Every number comes from the economics file (``configs/economics.yaml``); this module
only holds the formula.

For a facility with drawn exposure ``E`` (millions) and credit margin ``margin_bps``, served
in mode ``m`` with 12-month default probability ``d_m`` and churn probability ``c_m``:

- annual margin income ``M = E x margin_bps / 10,000``;
- a facility that defaults or churns during the year earns only a share of that year's
  margin: income ``M x (1 - exit_income_lost x (d_m + c_m))``;
- a default loses ``LGD_m x E`` with ``LGD_m = max(unsecured x (1 - recovery x min(collateral, 1)),
  floor) x factor_m`` (collateral recovers part of the loss; the mode's factor reflects how
  early a workout starts);
- a churned client takes ``churn_margin_years`` more years of margin with it:
  ``c_m x M x churn_margin_years``;
- serving the facility costs ``fixed_m + exposure_share_m x E`` a year.

So ``value_m = M (1 - exit_income_lost (d_m + c_m)) - d_m LGD_m E - c_m M churn_margin_years
- (fixed_m + exposure_share_m E)``, and a policy that moves a facility away from the mode it
is served in today pays ``switching_cost`` once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from pydantic import Field, model_validator

from crm_modes.data.schema import MODES
from crm_modes.shared.configuration import FrozenConfig, load_yaml_model
from crm_modes.shared.errors import InputError

BASIS_POINTS = 10_000.0


class ServicingCost(FrozenConfig):
    """Annual cost of serving one facility in a mode (millions)."""

    fixed: float = Field(ge=0)
    """Cost a year per facility, millions."""
    exposure_share: float = Field(ge=0, lt=1)
    """Cost a year as a share of the exposure."""


class LossGivenDefault(FrozenConfig):
    """Share of the exposure lost in a default."""

    unsecured: float = Field(gt=0, le=1)
    """Share of an unsecured exposure lost in a default."""
    collateral_recovery: float = Field(ge=0, le=1)
    """Share of the collateral value recovered."""
    floor: float = Field(ge=0, le=1)
    """The lowest loss given default, however much collateral."""
    mode_factor: dict[str, float]
    """Mode -> factor on the loss (responsible mode's early action lowers it)."""

    @model_validator(mode="after")
    def _every_mode(self) -> LossGivenDefault:
        _check_modes("loss_given_default.mode_factor", self.mode_factor)
        if any(not 0 < factor <= 1 for factor in self.mode_factor.values()):
            raise InputError("loss_given_default.mode_factor: each factor must be in (0, 1]")
        return self


class Economics(FrozenConfig):
    """The parsed economics file; see ``configs/economics.yaml`` for each entry's meaning and unit."""

    servicing_cost: dict[str, ServicingCost]
    """Mode -> what serving a facility in it costs."""
    loss_given_default: LossGivenDefault
    """How much of the exposure a default loses."""
    exit_income_lost: float = Field(ge=0, le=1)
    """Share of the year's margin lost when a facility leaves during the year."""
    churn_margin_years: float = Field(ge=0)
    """Further years of margin lost when a client leaves."""
    switching_cost: float = Field(ge=0)
    """One-off cost of moving a facility to another mode, millions."""
    move_confidence: float = Field(default=0.0, ge=0)
    """Standard errors of its gain a move must beat besides the switching cost (0: the estimate
    alone decides); needs logistic churn and PD models (models/gain_uncertainty.py)."""

    @model_validator(mode="after")
    def _every_mode(self) -> Economics:
        _check_modes("servicing_cost", self.servicing_cost)
        return self

    def lgd(self, collateral_coverage: np.ndarray) -> np.ndarray:
        """Loss given default of each facility in each mode, shape (n, modes)."""
        rules = self.loss_given_default
        recovered = rules.collateral_recovery * np.clip(np.nan_to_num(collateral_coverage), 0.0, 1.0)
        base = np.maximum(rules.unsecured * (1.0 - recovered), rules.floor)
        return base[:, None] * np.array([rules.mode_factor[mode] for mode in MODES])[None, :]


def _check_modes(entry: str, by_mode: dict[str, object]) -> None:
    if sorted(by_mode) != sorted(MODES):
        raise InputError(f"{entry}: needs exactly the modes {list(MODES)}, got {sorted(by_mode)}")


def load_economics(path: str | os.PathLike[str]) -> Economics:
    """Parse the economics file; errors name the file and the entry."""
    return load_yaml_model(path, Economics)


@dataclass(frozen=True)
class ValueParts:
    """The parts of the value (the module's formula), each of shape (n, modes), in millions.

    ``income`` has shape (n, 1) (it does not depend on the mode) and ``exposure`` shape (n,).
    """

    exposure: np.ndarray  # drawn exposure E, shape (n,)
    income: np.ndarray  # annual margin income M
    expected_loss: np.ndarray  # d_m x LGD_m x E
    margin_at_risk: np.ndarray  # M x (exit_income_lost (d_m + c_m) + churn_margin_years c_m)
    servicing: np.ndarray  # fixed_m + exposure_share_m x E

    def values(self) -> np.ndarray:
        """12-month expected value of each facility in each mode, shape (n, modes)."""
        return self.income - self.expected_loss - self.margin_at_risk - self.servicing


def value_parts(
    default_probability: np.ndarray,
    churn_probability: np.ndarray,
    *,
    exposure: np.ndarray,
    margin_bps: np.ndarray,
    collateral_coverage: np.ndarray,
    economics: Economics,
) -> ValueParts:
    """Income, expected loss, margin at risk and servicing cost of each facility in each mode.

    Args:
        default_probability, churn_probability: shape (n, modes), columns in :data:`MODES` order.
        exposure, margin_bps, collateral_coverage: shape (n,), as in the schema.
        economics: the parsed economics file.
    """
    exposure = np.nan_to_num(exposure)[:, None]
    income = exposure * np.nan_to_num(margin_bps)[:, None] / BASIS_POINTS
    cost = np.array(
        [[economics.servicing_cost[m].fixed, economics.servicing_cost[m].exposure_share] for m in MODES]
    )
    return ValueParts(
        exposure=exposure[:, 0],
        income=income,
        expected_loss=default_probability * economics.lgd(collateral_coverage) * exposure,
        margin_at_risk=income
        * (
            economics.exit_income_lost * (default_probability + churn_probability)
            + economics.churn_margin_years * churn_probability
        ),
        servicing=cost[:, 0][None, :] + cost[:, 1][None, :] * exposure,
    )


def value_slopes(
    *, exposure: np.ndarray, margin_bps: np.ndarray, collateral_coverage: np.ndarray, economics: Economics
) -> tuple[np.ndarray, np.ndarray]:
    """How each facility's value in each mode moves with its default and with its churn probability
    (the value is linear in both): two arrays of shape (n, modes), millions per unit of probability."""
    n = len(exposure)
    zero, one = np.zeros((n, len(MODES))), np.ones((n, len(MODES)))
    terms = {"exposure": exposure, "margin_bps": margin_bps, "collateral_coverage": collateral_coverage}
    base = value_parts(zero, zero, economics=economics, **terms).values()
    by_default = value_parts(one, zero, economics=economics, **terms).values() - base
    by_churn = value_parts(zero, one, economics=economics, **terms).values() - base
    return by_default, by_churn


def choose_modes(
    values: np.ndarray,
    mode_today: np.ndarray,
    switching_cost: float,
    *,
    uncertainty: np.ndarray | None = None,
    confidence: float = 0.0,
) -> np.ndarray:
    """The mode of highest value per facility, moving only where the gain beats the switching cost
    (and ``confidence`` standard errors of the gain).

    Args:
        values: shape (n, modes).
        mode_today: today's mode of each facility (index into MODES; -1 where unknown: then the
            best mode is chosen with no switching cost).
        switching_cost: one-off cost (millions) of moving a facility to another mode.
        uncertainty: shape (n, modes), the standard error of each mode's gain over today's.
        confidence: standard errors a move's gain must beat.
    """
    net = net_values(values, mode_today, switching_cost, uncertainty, confidence)
    known = mode_today >= 0
    rows = np.arange(values.shape[0])
    net[rows[known], mode_today[known]] = -np.inf  # the best move; with no mode today, the best mode
    best_move = net.argmax(axis=1)
    stays = known & (net[rows, best_move] <= values[rows, np.where(known, mode_today, 0)])
    return np.where(stays, mode_today, best_move)


def net_values(
    values: np.ndarray,
    mode_today: np.ndarray,
    switching_cost: float,
    uncertainty: np.ndarray | None = None,
    confidence: float = 0.0,
) -> np.ndarray:
    """Each facility's value in each mode, less the switching cost (and ``confidence`` standard
    errors) wherever the mode is not today's; a facility with no mode today pays neither."""
    net = np.array(values, dtype=np.float64)
    penalty = switching_cost + (confidence * uncertainty if uncertainty is not None else 0.0)
    return np.where(leaving(mode_today, net.shape[1]), net - penalty, net)


def leaving(mode_today: np.ndarray, modes: int) -> np.ndarray:
    """Shape (n, modes): whether serving each facility in each mode leaves today's mode (never for a
    facility with no mode today)."""
    known = mode_today >= 0
    moves = np.ones((len(mode_today), modes), dtype=bool)
    moves[np.flatnonzero(known), mode_today[known]] = False
    moves[~known] = False
    return moves


def policy_value(
    values: np.ndarray, chosen: np.ndarray, mode_today: np.ndarray, switching_cost: float
) -> np.ndarray:
    """Per-row value of serving each facility in ``chosen``, net of the switch where it moves."""
    switched = (mode_today >= 0) & (chosen != mode_today)
    return values[np.arange(values.shape[0]), chosen] - switching_cost * switched


def expected_loss(
    default_probability: np.ndarray,
    exposure: np.ndarray,
    collateral_coverage: np.ndarray,
    mode: np.ndarray,
    economics: Economics,
) -> np.ndarray:
    """PD x LGD x exposure, with the LGD of the mode each facility is served in (index into MODES)."""
    lgd = economics.lgd(collateral_coverage)[np.arange(mode.shape[0]), mode]
    return default_probability * lgd * np.nan_to_num(exposure)


def recommendation_reasons(parts: ValueParts, recommended: np.ndarray, reference: np.ndarray) -> list[str]:
    """Why the recommended mode beats the reference mode, in a relationship manager's words.

    Compares the parts of the value between the two modes (indices into MODES): expected
    credit loss, margin at risk and servicing cost, e.g. ``"responsible over basic: saves
    0.80m expected loss and 0.30m margin at risk on 45.0m exposure; costs 0.10m a year more"``.
    """
    rows = np.arange(recommended.shape[0])
    saved_loss = parts.expected_loss[rows, reference] - parts.expected_loss[rows, recommended]
    saved_margin = parts.margin_at_risk[rows, reference] - parts.margin_at_risk[rows, recommended]
    extra_cost = parts.servicing[rows, recommended] - parts.servicing[rows, reference]
    names = np.asarray(MODES, dtype=object)
    # the direction of an amount shown as 0.00m is not the rounding noise's: two modes with the same
    # effect differ by a few 1e-17 that a batch and a single row compute differently
    shown = 0.005
    loss_verb = np.where(saved_loss > -shown, "saves", "adds")
    margin_verb = np.where(saved_margin > -shown, "saves", "adds")
    cost_word = np.where(extra_cost > -shown, "more", "less")
    return [
        f"{r} over {o}: {lv} {sl:.2f}m expected loss and {mv} {sm:.2f}m margin at risk "
        f"on {e:.1f}m exposure; costs {ec:.2f}m a year {cw}"
        for r, o, lv, sl, mv, sm, e, ec, cw in zip(
            names[recommended].tolist(),
            names[reference].tolist(),
            loss_verb.tolist(),
            np.abs(saved_loss).tolist(),
            margin_verb.tolist(),
            np.abs(saved_margin).tolist(),
            parts.exposure.tolist(),
            np.abs(extra_cost).tolist(),
            cost_word.tolist(),
            strict=True,
        )
    ]
