"""What the tests and the benchmarks share to run the service for real: its processes' environment
and stop (``processes``), one gunicorn launcher (``gunicorn``) and one deadline helper
(``waiting``). Neither ``tests/`` nor ``benchmarks/`` is imported from here."""
