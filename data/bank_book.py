"""A bank's raw files as a book in the schema: mapped, labelled from events, completed, checked.

:func:`build_book` runs the steps in order, each a pure function of tables:

1. :func:`~crm_modes.data.book_contract.map_panel`: the bank's names, codes, dates and units;
2. :func:`~crm_modes.data.book_labels.labels_from_events`: ``default_12m`` and ``churn_12m``;
3. ``other_facilities_mode`` derived from the panel where the bank does not supply it, and the
   macro series joined point in time where the contract names one;
4. the validation gate, with the columns the bank does not have left out of what it requires.

Every panel row is accounted for: rows in = in the book + quarantined (with the source row and
the reason) + dropped because they come on or after the facility's default or exit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from crm_modes.data.book_contract import BookContract, Mapped, map_panel
from crm_modes.data.book_labels import join_macro, labels_from_events, other_facilities_mode
from crm_modes.data.gate import REASON, SOURCE_ROW, validate
from crm_modes.data.profile import TableProfile, infer_profile
from crm_modes.data.schema import SCHEMA, Role
from crm_modes.shared.errors import InputError


@dataclass
class BankBook:
    """The book, and what became of every row and event."""

    book: pd.DataFrame
    quarantine: pd.DataFrame
    events_quarantine: pd.DataFrame
    rows_in: int
    dropped_after_exit: int
    events_in: int
    events_used: int
    derived: list[str]
    absent: list[str]
    counts: dict[str, int]

    @property
    def reconciles(self) -> bool:
        return self.rows_in == len(self.book) + len(self.quarantine) + self.dropped_after_exit


def complete(
    rows: pd.DataFrame, contract: BookContract, macro: pd.DataFrame | None
) -> tuple[pd.DataFrame, list[str]]:
    """Mapped rows with the context the bank does not supply: ``other_facilities_mode`` derived from
    the panel (the client's other facilities at the same snapshot) and the macro series joined point
    in time; and the names of the columns so added.

    Raises:
        InputError: the contract names a macro series and none was given, or it has a gap.
    """
    rows, derived = rows.copy(), []
    if "other_facilities_mode" not in rows:
        rows["other_facilities_mode"] = other_facilities_mode(rows)
        derived.append("other_facilities_mode")
    if contract.macro is not None:
        if macro is None:
            raise InputError(f"the contract joins {contract.macro.column} from a macro series: pass --macro")
        joined = join_macro(rows, macro, contract.macro, contract.date_format)
        rows[list(joined.columns)] = joined
        derived.extend(joined.columns)
    return rows, derived


def prepare_panel(panel: pd.DataFrame, contract: BookContract, macro: pd.DataFrame | None) -> Mapped:
    """A bank's panel to score (no events, no labels): mapped by the contract and completed
    (:func:`complete`); ``rows`` keep their ``source_row``, rows that cannot be mapped are in the
    quarantine with theirs and the reason. The scoring gate checks the rows afterwards."""
    mapped = map_panel(panel, contract)
    if mapped.rows.empty:
        return mapped
    rows, _ = complete(mapped.rows, contract, macro)
    return Mapped(rows, mapped.quarantine)


def infer_book_profile(
    book: pd.DataFrame, contract: BookContract, *, source: str, margin: float
) -> TableProfile:
    """What each input of a bank's book may hold, inferred from the book ``crm-modes labels`` wrote
    (robust ranges, the categories the bank uses), to review and commit: the gate of the bank's
    book and of every month scored with its bundle narrows the schema's declarations to it."""
    numeric, categorical = contract.profiled_inputs()
    present = [name for name in [*numeric, *categorical] if name in book.columns]
    uses = dict.fromkeys(present, "feature")
    return infer_profile(book, uses, numeric=set(numeric), source=source, margin=margin)  # type: ignore[arg-type]


def build_book(
    panel: pd.DataFrame, events: pd.DataFrame, contract: BookContract, macro: pd.DataFrame | None = None
) -> BankBook:
    """The bank's panel and events as a labelled book in the schema (see the module).

    Raises:
        InputError: the contract does not fit the files (a column missing, no events section), or
            the macro series is needed and missing, or has a gap.
    """
    mapped = map_panel(panel, contract)
    if mapped.rows.empty:  # nothing could be mapped: the quarantine says why, the guard stops the job
        nothing = pd.DataFrame(columns=[SOURCE_ROW, REASON])
        return BankBook(
            mapped.rows,
            mapped.quarantine,
            nothing,
            mapped.rows_in,
            0,
            len(events),
            0,
            [],
            contract.absent(),
            {},
        )
    labelled = labels_from_events(mapped.rows, events, contract)
    rows, derived = complete(labelled.rows, contract, macro)
    absent = [name for name in contract.absent() if name not in rows]
    source_rows = rows.pop(SOURCE_ROW).to_numpy()
    checked = validate(rows, required=list(contract.required_columns()))
    gate_quarantine = checked.quarantine.copy()
    if len(gate_quarantine):  # the gate counts rows of what it was given: back to the panel's rows
        gate_quarantine[SOURCE_ROW] = source_rows[gate_quarantine[SOURCE_ROW].to_numpy() - 1]
    quarantine = pd.concat(
        [
            mapped.quarantine,
            gate_quarantine.astype({c: "string" for c in gate_quarantine if c not in (SOURCE_ROW,)}),
        ],
        ignore_index=True,
    )
    book = checked.valid
    labels = [column.name for column in SCHEMA if column.role is Role.LABEL]
    counts = {
        **labelled.counts,
        **{f"{label} known": int(book[label].notna().sum()) for label in labels if label in book},
    }
    return BankBook(
        book,
        quarantine.sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)[
            [SOURCE_ROW, *[c for c in quarantine.columns if c not in (SOURCE_ROW, REASON)], REASON]
        ],
        labelled.events_quarantine,
        mapped.rows_in,
        labelled.dropped_after_exit,
        labelled.events_in,
        labelled.events_used,
        derived,
        absent,
        counts,
    )
