"""The call journal's rules, pure (no store, no HTTP, no clock): what each source (the PBX's legs,
the IVR's push, zain's details) reports about a call, made into the one CRM call log
(``call_logs``). The journal service (``services/journal.py``, ``services/delivery.py``), its store
part (``store/journal.py``) and its schemas (``schemas/journal.py``) all apply these rules."""
