"""scikit-learn's own contract checks, run over every custom transformer."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from crm_modes.features.categorical import CategoryEncoder
from crm_modes.features.domain import DomainFeatures
from crm_modes.features.entrance import EntranceCheck
from crm_modes.features.numeric import NumericCleaner


@parametrize_with_checks(
    [
        EntranceCheck(),
        NumericCleaner(),
        NumericCleaner(clip_quantiles=None, add_indicator=False),
        CategoryEncoder(min_frequency=1),
        CategoryEncoder(encoding="ordinal", min_frequency=3),
        DomainFeatures(),
    ]
)
def test_sklearn_contract(estimator, check):
    check(estimator)
