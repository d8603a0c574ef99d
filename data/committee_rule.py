"""The noiseless relationship-mode policy the simulated credit committee follows.

It encodes the source article's logic on a facility's static terms:

- **responsible** for large, bespoke, long emerging-market or otherwise high-uncertainty
  exposures, where continuous monitoring and early intervention pay for their cost;
- **reactive** for complex, multi-stakeholder project finance and syndications that are
  not outsized: respond fast when a problem shows;
- **basic** for standardized, small, simple exposures: close the deal fast.

The historical ``assigned_mode`` is this policy plus human noise (see the generator).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from crm_modes.data.schema import MODES

BASIC, REACTIVE, RESPONSIBLE = (MODES.index(mode) for mode in ("basic", "reactive", "responsible"))

#: Committed amount (millions) from which a facility is always run in responsible mode.
LARGE_EXPOSURE = 400.0
#: An emerging-market facility at least this long and this large is run responsibly.
EMERGING_LONG_TERM_MONTHS = 60
EMERGING_MATERIAL_AMOUNT = 20.0
#: A syndication needs at least this many parties to count as complex.
COMPLEX_STAKEHOLDERS = 5


def policy_mode(
    *,
    product: NDArray[np.str_] | NDArray[np.object_],
    facility_amount: NDArray[np.float64],
    term_months: NDArray[np.int64],
    customization: NDArray[np.str_] | NDArray[np.object_],
    market: NDArray[np.str_] | NDArray[np.object_],
    stakeholder_count: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Index into :data:`MODES` of the mode the noiseless policy assigns to each facility."""
    responsible = (
        (facility_amount >= LARGE_EXPOSURE)
        | (customization == "bespoke")
        | (
            (market == "emerging")
            & (term_months >= EMERGING_LONG_TERM_MONTHS)
            & (facility_amount >= EMERGING_MATERIAL_AMOUNT)
        )
    )
    reactive = (product == "project_finance") | (
        (product == "syndicated_loan") & (stakeholder_count >= COMPLEX_STAKEHOLDERS)
    )
    return np.where(responsible, RESPONSIBLE, np.where(reactive, REACTIVE, BASIC)).astype(np.int64)
