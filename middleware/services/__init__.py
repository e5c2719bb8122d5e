"""The logic between the views and the upstream clients and store, one module per capability:
click-to-call (``calls``), caller lookup (``lookup``), the journal and its delivery (``journal``,
``delivery``, ``deliverer``), rings and screen pops (``rings``, ``events``), agents, the board,
callbacks, reports, privacy and retention. A service imports no view and no schema."""
