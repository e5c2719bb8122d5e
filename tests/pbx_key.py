"""The one key the PBX tests and benchmarks put in a dialplan, and the settings that accept it.

A PBX holds a ``CTI_LOOKUP_KEYS`` key (contract section 1). Until lookup keys exist (issue 15) this
is the full test key; switching both names here switches every PBX test."""

from .conftest import API_KEY

PBX_KEY = API_KEY
PBX_KEY_ENV: dict[str, str] = {}  # with lookup keys: {"CTI_LOOKUP_KEYS": PBX_KEY}
