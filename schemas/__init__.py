"""Marshmallow schemas: they validate what comes in, shape what goes out, and describe the API."""
