"""What every function's wiring builds on and a test resets between cases: the AWS clients, the settings
read from the environment, and the secrets Powertools caches."""

from aws_lambda_powertools.utilities import parameters

from igdm.runtime import aws
from igdm.runtime.config import clear_settings_cache


def reset() -> None:
    """The next invocation creates its clients, reads its settings and fetches its secrets again."""
    aws.clear_clients()
    clear_settings_cache()
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
