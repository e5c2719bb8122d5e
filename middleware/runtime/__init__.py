"""What every process has, whatever it serves: per-process resources remade after a fork
(``forks``), the one background pool (``background``), structured logs (``logs``), metrics
(``metrics``), secrets and phone numbers kept out of logs (``secrets``, ``masking``), JSON from
outside bounded before parsing (``jsontext``), the request class (``wsgi``) and the streams one
credential may hold (``credential_slots``). The bottom layer: it imports no view, service, store,
upstream client or schema."""
