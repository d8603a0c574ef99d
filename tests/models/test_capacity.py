"""The allocation within capacity: equal to brute force on small books, its edges, and its prices."""

import itertools

import numpy as np
import pytest

from crm_modes.models.capacity import RESPONSIBLE, allocate


def brute_force(values, current, *, switching_cost=0.0, responsible=None, moves=None):
    """Every assignment of modes tried: the best total value within the bounds, or None."""
    n, k = values.shape
    best = None
    for modes in itertools.product(range(k), repeat=n):
        modes = np.array(modes)
        moved = (current >= 0) & (modes != current)
        if responsible is not None and (modes == RESPONSIBLE).sum() > responsible:
            continue
        if moves is not None and moved.sum() > moves:
            continue
        total = values[np.arange(n), modes].sum() - switching_cost * moved.sum()
        best = total if best is None else max(best, total)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_the_allocation_equals_brute_force_on_small_books(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 7))
    values = rng.normal(size=(n, 3)).round(2)
    current = rng.integers(-1, 3, size=n)
    responsible = int(rng.integers(0, n + 1)) if seed % 3 else None
    moves = int(rng.integers(0, n + 1)) if seed % 2 else None
    switching = float(rng.choice([0.0, 0.1, 0.5]))
    expected = brute_force(values, current, switching_cost=switching, responsible=responsible, moves=moves)
    found = allocate(values, current, switching_cost=switching, responsible=responsible, moves=moves)
    assert found.value == pytest.approx(expected, abs=1e-9)
    if responsible is not None:
        assert (found.modes == RESPONSIBLE).sum() <= responsible
    moved = (current >= 0) & (found.modes != current)
    if moves is not None:
        assert moved.sum() <= moves
    assert sorted(found.order) == sorted(np.flatnonzero(moved))


def test_a_cap_of_zero_a_cap_above_the_book_and_no_facility():
    values = np.array([[0.0, 1.0, 3.0], [0.0, 2.0, 2.5], [1.0, 0.0, 0.5]])
    current = np.array([0, 0, 2])
    none = allocate(values, current, responsible=0)
    assert not (none.modes == RESPONSIBLE).any()
    assert none.responsible_price > 0  # a slot would be worth something
    free = allocate(values, current, responsible=10)
    assert free.modes.tolist() == [2, 2, 0]  # each its best mode: the bound does not bind
    assert free.responsible_price == pytest.approx(0.0)
    empty = allocate(np.empty((0, 3)), np.empty(0, np.int64), responsible=3)
    assert (empty.modes.size, empty.value) == (0, 0.0)


def test_the_price_of_a_slot_is_what_one_more_adds_and_moves_come_most_valuable_first():
    values = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 3.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0]])
    current = np.zeros(4, dtype=np.int64)  # all basic today
    two = allocate(values, current, responsible=2)
    three = allocate(values, current, responsible=3)
    assert two.modes.tolist() == [2, 2, 0, 0]
    assert two.order.tolist() == [0, 1]  # the larger gain first
    assert two.responsible_price == pytest.approx(three.value - two.value)  # = 2, the next best gain
    paced = allocate(values, current, moves=1)
    assert paced.modes.tolist() == [2, 0, 0, 0]
    assert paced.move_price == pytest.approx(3.0)


def test_a_gain_within_its_uncertainty_does_not_move_the_facility():
    values = np.array([[1.0, 0.0, 1.3], [1.0, 0.0, 3.0]])
    current = np.array([0, 0])
    uncertainty = np.full((2, 3), 0.2)
    bold = allocate(values, current)
    careful = allocate(values, current, uncertainty=uncertainty, confidence=2.0)
    assert bold.modes.tolist() == [2, 2]
    assert careful.modes.tolist() == [0, 2]  # 0.3 is within two standard errors of 0.2; 2.0 is not


def test_bounds_that_cannot_both_hold_are_a_clear_error():
    values = np.zeros((4, 3))
    current = np.full(4, RESPONSIBLE)
    refused = r"3 facilities must leave responsible mode .* more than the 2 moves"
    with pytest.raises(ValueError, match=refused):
        allocate(values, current, responsible=1, moves=2)
    assert (allocate(values, current, responsible=1, moves=3).modes == RESPONSIBLE).sum() == 1


def test_the_move_list_names_each_move_its_modes_and_its_gain_most_valuable_first():
    from crm_modes.models.capacity import move_list

    values = np.array([[1.0, 2.0, 5.0], [4.0, 1.0, 0.0], [1.0, 3.0, 2.5], [0.0, 0.0, 9.0]])
    current = np.array([0, 0, 1, 2])
    allocation = allocate(values, current, switching_cost=0.5, responsible=1)
    moves = move_list(allocation, values, current, switching_cost=0.5)
    assert moves["row"].tolist() == allocation.order.tolist()
    # facility 3 keeps the one slot (9 in responsible); facility 0 takes reactive, its best without a slot
    assert moves["row"].tolist() == [0]
    assert moves["mode_today"].tolist() == [0]
    assert moves["mode_allocated"].tolist() == [1]
    assert moves["gain"].tolist() == [2.0 - 1.0 - 0.5]


def test_allocate_writes_the_moves_of_a_scored_month_within_the_cap(cli, tmp_path):
    import subprocess

    import pandas as pd

    from tests.conftest import REPO

    rng = np.random.default_rng(0)
    n = 500
    values = rng.normal(1.0, 0.5, size=(n, 3))
    values[:, 2] += 0.4  # responsible often best: the cap binds
    scores = pd.DataFrame(
        {
            "facility_id": [f"F{row:04d}" for row in range(n)],
            "value_basic": values[:, 0],
            "value_reactive": values[:, 1],
            "value_responsible": values[:, 2],
            "assigned_mode": rng.choice(["basic", "reactive", "responsible"], n),
        }
    )
    scores.to_parquet(tmp_path / "scores.parquet")
    command = [
        cli,
        "allocate",
        "--scores",
        "scores.parquet",
        "--config",
        str(REPO / "configs" / "train.yaml"),
    ]
    result = subprocess.run(
        [*command, "--output", "moves.csv", "--responsible-share", "0.1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "responsible: at most 50.0; one more is worth" in result.stdout
    moves = pd.read_csv(tmp_path / "moves.csv")
    assert moves["rank"].tolist() == list(range(1, len(moves) + 1))
    assert moves["gain"].is_monotonic_decreasing
    # a move that loses value is one the cap forces: a facility leaving responsible mode
    assert (moves.loc[moves["gain"] <= 0, "mode_today"] == "responsible").all()
    kept = scores.set_index("facility_id")["assigned_mode"].to_dict()
    final = {**kept, **dict(zip(moves["facility_id"], moves["mode_allocated"], strict=True))}
    assert sum(mode == "responsible" for mode in final.values()) <= 50
    assert (moves["mode_today"] == moves["facility_id"].map(kept)).all()

    scores.drop(columns="value_reactive").to_parquet(tmp_path / "scores.parquet")
    broken = subprocess.run(
        [*command, "--output", "moves.csv"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert broken.returncode == 2
    assert "value_reactive" in broken.stdout + broken.stderr


def test_allocate_places_facilities_without_a_mode_today_and_refuses_bad_input(cli, tmp_path):
    import subprocess

    import pandas as pd

    from tests.conftest import REPO

    n = 40
    rng = np.random.default_rng(1)
    scores = pd.DataFrame(
        {
            "facility_id": [f"F{row:03d}" for row in range(n)],
            "value_basic": rng.normal(1.0, 0.5, n),
            "value_reactive": rng.normal(1.0, 0.5, n),
            "value_responsible": rng.normal(1.4, 0.5, n),
            "assigned_mode": [None] * 5 + list(rng.choice(["basic", "reactive"], n - 5)),
        }
    )
    config = str(REPO / "configs" / "train.yaml")

    def run(*extra: str) -> subprocess.CompletedProcess:
        scores.to_parquet(tmp_path / "scores.parquet")
        command = [cli, "allocate", "--scores", "scores.parquet", "--config", config, "--output", "moves.csv"]
        return subprocess.run([*command, *extra], cwd=tmp_path, capture_output=True, text=True, timeout=120)

    result = run("--responsible-share", "0.2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "5 without a mode today placed" in result.stdout
    listed = pd.read_csv(tmp_path / "moves.csv")
    placed = listed[listed["mode_today"].isna()]
    assert placed["facility_id"].tolist() == [f"F{row:03d}" for row in range(5)]  # after the moves
    assert placed["gain"].isna().all()
    assert placed.index.min() == len(listed) - 5
    assert listed["mode_allocated"].isin(["basic", "reactive", "responsible"]).all()

    too_much = run("--responsible-share", "1.5")
    assert too_much.returncode == 2
    assert "responsible-share" in too_much.stderr

    scores.loc[7, "assigned_mode"] = "premium"
    wrong = run()
    assert wrong.returncode == 2
    assert "premium" in wrong.stdout + wrong.stderr
    assert "Traceback" not in wrong.stderr


def brute_force_budgets(values, current, budgets, *, switching_cost=0.0):
    """Every assignment tried against general budgets: the best total value, or None."""
    n, k = values.shape
    best = None
    for modes in itertools.product(range(k), repeat=n):
        modes = np.array(modes)
        if any(
            (
                np.bincount(b.groups(n), weights=b.uses(n, k)[np.arange(n), modes], minlength=len(b.limit))
                > b.limit + 1e-9
            ).any()
            for b in budgets
        ):
            continue
        moved = (current >= 0) & (modes != current)
        total = values[np.arange(n), modes].sum() - switching_cost * moved.sum()
        best = total if best is None else max(best, total)
    return best


def small_book(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    values = rng.normal(size=(n, 3)).round(2)
    current = rng.integers(-1, 3, size=n)
    group = rng.integers(0, 2, size=n)
    return rng, n, values, current, group


@pytest.mark.parametrize("seed", range(12))
def test_responsible_slots_per_group_equal_brute_force(seed):
    from crm_modes.models.capacity import responsible_slots

    rng, _n, values, current, group = small_book(seed)
    budget = responsible_slots(rng.integers(0, 3, size=2), group, ("north", "south"))
    found = allocate(values, current, switching_cost=0.1, budgets=[budget])
    assert found.gap == 0.0  # slots come whole: the allocation is exact
    assert found.value == pytest.approx(brute_force_budgets(values, current, [budget], switching_cost=0.1))
    in_responsible = np.bincount(group, weights=found.modes == RESPONSIBLE, minlength=2)
    assert (in_responsible <= budget.limit).all()


@pytest.mark.parametrize("seed", range(16))
def test_rm_hours_come_within_their_gap_of_brute_force(seed):
    from crm_modes.models.capacity import rm_hours

    rng, n, values, current, group = small_book(seed)
    hours = {"basic": 0.5, "reactive": 2.0, "responsible": 6.0}
    limit = 0.5 * n + rng.uniform(0, 6 * n, size=2).round(1)
    budget = rm_hours(hours, limit, group, ("north", "south"))
    found = allocate(values, current, budgets=[budget])
    best = brute_force_budgets(values, current, [budget])
    used = np.bincount(group, weights=np.array([0.5, 2.0, 6.0])[found.modes], minlength=2)
    assert (used <= limit + 1e-9).all()
    assert found.value <= best + 1e-9
    assert found.value >= best - found.gap - 1e-9  # never further below the best than it says


@pytest.mark.parametrize("seed", range(10))
def test_several_budgets_together_equal_brute_force(seed):
    from crm_modes.models.capacity import moves_per_run, responsible_slots, rm_hours

    rng, n, values, current, group = small_book(seed)
    current = np.where(current < 0, 0, current)  # every facility in a mode: no forced move is possible
    budgets = [
        responsible_slots(rng.integers(1, 3, size=2), group, ("north", "south")),
        rm_hours({"basic": 0.0, "reactive": 1.0, "responsible": 3.0}, [3.0 * n], None),
        moves_per_run(int(rng.integers(1, n + 1)), current),
    ]
    if brute_force_budgets(values, current, budgets) is None:
        with pytest.raises(ValueError, match="no allocation satisfies the bounds"):
            allocate(values, current, budgets=budgets)
        return
    found = allocate(values, current, budgets=budgets)
    assert found.value == pytest.approx(brute_force_budgets(values, current, budgets))
    assert found.gap == 0.0


def test_each_group_has_its_own_price_and_a_group_that_cannot_fit_is_named():
    from crm_modes.models.capacity import responsible_slots, rm_hours

    values = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 3.0], [0.0, 0.0, 2.0], [0.0, 0.0, 4.0]])
    current = np.zeros(4, dtype=np.int64)
    group = np.array([0, 0, 0, 1])
    allocation = allocate(values, current, budgets=[responsible_slots([1, 1], group, ("north", "south"))])
    assert allocation.modes.tolist() == [2, 0, 0, 2]
    assert allocation.prices["responsible"].tolist() == [3.0, 0.0]  # north's next best gain; south has room
    assert allocation.responsible_price == 3.0
    hours = {"basic": 1.0, "reactive": 2.0, "responsible": 6.0}
    with pytest.raises(ValueError, match=r"rm_hours in south: its facilities need 1.00 .* limit of 0.50"):
        allocate(values, current, budgets=[rm_hours(hours, [10.0, 0.5], group, ("north", "south"))])


def test_an_hour_is_priced_at_the_value_per_hour_of_the_first_step_left_out():
    from crm_modes.models.capacity import rm_hours

    # each facility: basic 0, reactive +2 for 2 hours (1 an hour), responsible +3 for 6 hours
    values = np.tile([0.0, 2.0, 3.0], (3, 1))
    current = np.zeros(3, dtype=np.int64)
    allocation = allocate(
        values, current, budgets=[rm_hours({"basic": 0, "reactive": 2, "responsible": 6}, 6.0)]
    )
    assert allocation.modes.tolist() == [1, 1, 1]  # three reactive (value 6) beat one responsible (3)
    assert allocation.prices["rm_hours"].tolist() == [0.25]  # reactive to responsible: +1 for 4 hours
    assert allocation.gap == 0.0


def test_allocate_holds_each_regions_hours_with_the_region_read_from_the_book(cli, tmp_path):
    import subprocess

    import pandas as pd

    from tests.conftest import REPO

    rng = np.random.default_rng(2)
    n = 300
    scores = pd.DataFrame(
        {
            "facility_id": [f"F{row:03d}" for row in range(n)],
            "value_basic": rng.normal(1.0, 0.5, n),
            "value_reactive": rng.normal(1.3, 0.5, n),
            "value_responsible": rng.normal(1.8, 0.5, n),
            "assigned_mode": rng.choice(["basic", "reactive", "responsible"], n),
        }
    )
    scores.to_parquet(tmp_path / "scores.parquet")
    book = pd.DataFrame({"facility_id": scores["facility_id"], "region": rng.choice(["north", "south"], n)})
    book.to_csv(tmp_path / "book.csv", index=False)
    (tmp_path / "teams.yaml").write_text(
        f"base: {REPO / 'configs' / 'train.yaml'}\n"
        "advisor:\n"
        "  capacity:\n"
        "    per: region\n"
        "    rm_hours_per_facility: 1.5\n"
        "    hours_by_mode: {basic: 0.5, reactive: 1.5, responsible: 4.0}\n"
    )
    command = [
        cli,
        "allocate",
        "--scores",
        "scores.parquet",
        "--config",
        "teams.yaml",
        "--output",
        "moves.csv",
    ]

    alone = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2
    assert "no column 'region'; pass --book" in alone.stdout + alone.stderr

    result = subprocess.run(
        [*command, "--book", "book.csv"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rm_hours in north: at most" in result.stdout
    assert "rm_hours in south: at most" in result.stdout
    moves = pd.read_csv(tmp_path / "moves.csv")
    assert (moves["region"] == moves["facility_id"].map(book.set_index("facility_id")["region"])).all()
    final = scores.set_index("facility_id")["assigned_mode"].to_dict()
    final.update(zip(moves["facility_id"], moves["mode_allocated"], strict=True))
    hours = book["facility_id"].map(final).map({"basic": 0.5, "reactive": 1.5, "responsible": 4.0})
    used = hours.groupby(book["region"]).sum()
    allowed = 1.5 * book["region"].value_counts()
    assert (used <= allowed[used.index] + 1e-9).all()
    assert (used > 0.9 * allowed[used.index]).all()  # the hours are worth using: nearly all are

    book.iloc[:-1].to_csv(tmp_path / "book.csv", index=False)
    short = subprocess.run(
        [*command, "--book", "book.csv"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert short.returncode == 2
    assert "1 scored facilities are not in it" in short.stdout + short.stderr


def test_allocate_moves_only_where_the_gain_beats_its_standard_errors(cli, tmp_path):
    import subprocess

    import pandas as pd

    from tests.conftest import REPO

    rng = np.random.default_rng(4)
    n = 200
    scores = pd.DataFrame(
        {
            "facility_id": [f"F{row:03d}" for row in range(n)],
            "value_basic": np.zeros(n),
            "value_reactive": rng.normal(0.0, 0.05, n),
            "value_responsible": rng.normal(0.05, 0.05, n),
            "assigned_mode": ["basic"] * n,
            "gain_error_basic": np.zeros(n),
            "gain_error_reactive": rng.uniform(0.0, 0.03, n),
            "gain_error_responsible": rng.uniform(0.0, 0.03, n),
        }
    )
    scores.to_parquet(tmp_path / "scores.parquet")
    economics = (REPO / "configs" / "economics.yaml").read_text()
    (tmp_path / "careful.yaml").write_text(economics + "move_confidence: 2.0\n")
    (tmp_path / "train.yaml").write_text(
        f"base: {REPO / 'configs' / 'train.yaml'}\nadvisor:\n  economics: careful.yaml\n"
    )
    command = [cli, "allocate", "--scores", "scores.parquet", "--output", "moves.csv"]

    def moves(config: str) -> pd.DataFrame:
        result = subprocess.run(
            [*command, "--config", config], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return pd.read_csv(tmp_path / "moves.csv").merge(scores, on="facility_id")

    bold = moves(str(REPO / "configs" / "train.yaml"))
    careful = moves("train.yaml")
    assert 0 < len(careful) < len(bold)
    error = careful.apply(lambda row: row[f"gain_error_{row['mode_allocated']}"], axis=1)
    assert (careful["gain"] > 2.0 * error).all()

    scores.assign(gain_error_reactive=np.nan).to_parquet(tmp_path / "scores.parquet")
    unestimated = subprocess.run(
        [*command, "--config", "train.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert unestimated.returncode == 2
    assert "rows have no gain errors" in unestimated.stdout + unestimated.stderr
