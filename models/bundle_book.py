"""The book contract an advisor bundle ships, and what it changes for whoever scores with it.

A bundle trained on a bank's book ships the bank's book contract (``book_contract.yaml``,
verified with the bundle's other files), and perhaps the bank's reviewed profile of its book
(``book_profile.yaml``): its rows are read through the contract (:mod:`crm_modes.data.bank_file`),
and its gate does not ask for the inputs the bank lacks and narrows the schema to the profile.
"""

from __future__ import annotations

import os
from pathlib import Path

from crm_modes.data.bank_file import BankInput
from crm_modes.data.book_contract import BookContract
from crm_modes.data.gate import Gate, UnseenInputs
from crm_modes.data.io import read_table
from crm_modes.data.profile import load_profile
from crm_modes.data.schema import SCHEMA
from crm_modes.models.advisor import BOOK_ARTIFACT, BOOK_PROFILE_ARTIFACT, artifact_path
from crm_modes.shared.configuration import load_yaml_model
from crm_modes.shared.errors import InputError


def bundle_contract(model_root: Path) -> BookContract | None:
    """The book contract a (verified) bundle at ``model_root`` ships, or None (the project's book)."""
    path = artifact_path(model_root, BOOK_ARTIFACT)
    return load_yaml_model(path, BookContract) if path.exists() else None


def scoring_gate(model_root: Path, unseen_inputs: UnseenInputs = "score") -> Gate:
    """The gate of the rows of the advisor bundle at ``model_root``: the schema's; for a bank's
    bundle, less the inputs the bank lacks and narrowed to the bank's reviewed profile of its book
    where the bundle ships one."""
    contract = bundle_contract(model_root)
    if contract is None:
        return Gate(unseen_inputs=unseen_inputs)
    profile = artifact_path(model_root, BOOK_PROFILE_ARTIFACT)
    columns = load_profile(profile).tightening(SCHEMA) if profile.exists() else SCHEMA
    return Gate(required=contract.required_columns(), columns=columns, unseen_inputs=unseen_inputs)


def bank_input(model_root: Path, macro: str | os.PathLike[str] | None) -> BankInput | None:
    """How a bundle reads its input: a bank's file through its contract, or None (the schema's book,
    where ``macro`` is refused).

    Raises:
        InputError: a macro series given to a bundle that joins none, or missing where it does.
    """
    contract = bundle_contract(model_root)
    if contract is None:
        if macro is not None:  # the schema's book carries gdp_growth on every row
            raise InputError("--macro is for a bundle trained on a bank's book, not this one")
        return None
    if contract.macro is not None and macro is None:
        raise InputError(
            f"the bundle's book contract joins {contract.macro.column} from a macro series: pass --macro"
        )
    if macro is not None and not Path(macro).is_file():
        raise InputError(f"{os.fspath(macro)}: no such file")
    return BankInput(contract, read_table(macro) if macro is not None else None)
