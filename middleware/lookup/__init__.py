"""The caller lookup's own machinery, below its service (``services/lookup.py``) and its view
(``api/contacts.py``): the contact cache of one worker (``cache``) and of every host in Redis
(``shared_cache``), the hit path's memos (``memo``), the name a phone shows (``display``) and who
asks for the plain-text form (``text_form``). Nothing here imports a view or a service."""
