"""sklearn's estimator checks, once over every configuration in the registry.

The registry (``estimator_specs.SPECS``) names each public estimator, the
extra configurations the checks also run on, and the checks each cannot pass,
with the reason. The multiple-instance classifier takes a list of bags, which
sklearn's checks cannot generate: its tags say so, the checks that apply run
here, and its own test file covers the rest of the contract (clone, pickle,
refit, CV).
"""

import pytest
from estimator_specs import check_instances
from sklearn.utils.estimator_checks import parametrize_with_checks

INSTANCES = check_instances()
_FAILURES = {id(est): spec.expected_failures for spec, est in INSTANCES}

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _expected(estimator):
    return _FAILURES[id(estimator)](estimator)


@parametrize_with_checks([est for _, est in INSTANCES], expected_failed_checks=_expected)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
