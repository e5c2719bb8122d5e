"""What a shell starts: both servers of a host (``serve``), the stream server and its connection
rules (``stream_server``, ``stream_guard``), ``make run`` (``dev``, with the sample floor of
``sandbox_floor``) and the ``flask --app app`` command groups (``cli``, ``store_cli``). The top of
the stack: nothing imports a command but the factory (which registers the command groups)."""
