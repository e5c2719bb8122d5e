"""CTI middleware: joins a CRM to the call-center platforms its agents dial through."""


def create_app(test_config=None):
    """Build the Flask app; ``test_config`` overrides environment variables (CTI_* names)."""
    from .factory import build_app

    return build_app(test_config)
