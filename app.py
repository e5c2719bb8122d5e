"""WSGI entry point: ``gunicorn app:app`` or ``flask --app app``."""

from middleware import create_app

app = create_app()
