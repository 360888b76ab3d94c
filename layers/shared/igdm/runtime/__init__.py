"""What every function's wiring builds on and a test resets between cases: the AWS clients, the settings
read from the environment, and the secrets Powertools caches."""


def reset() -> None:
    """The next invocation creates its clients, reads its settings and fetches its secrets again."""
    # Imported here, not with the package: every function's modules import igdm.runtime.aws, and the
    # settings models and Powertools' parameters would cost the webhook's cold start on the way.
    from aws_lambda_powertools.utilities import parameters

    from igdm.runtime import aws
    from igdm.runtime.config import clear_settings_cache

    aws.clear_clients()
    clear_settings_cache()
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
