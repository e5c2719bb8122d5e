"""CTI middleware: joins a CRM to the call-center platforms its agents dial through."""


def create_app(test_config=None):
    """Build the Flask app; ``test_config`` overrides environment variables (CTI_* names).

    Without one, this is a serving process (``app.py``: a gunicorn worker, or with ``--preload``
    the master that forks them), so its journal deliverer and retention start here; a ``flask``
    command (Flask sets ``FLASK_RUN_FROM_CLI`` before it loads ``app.py``) serves nothing, and a
    test's app starts them only when the test asks."""
    import os

    from .factory import build_app, start_background

    app = build_app(test_config)
    if test_config is None and os.environ.get("FLASK_RUN_FROM_CLI") != "true":
        start_background(app)
    return app
