"""The one key the PBX tests and benchmarks put in a dialplan, and the settings that accept it.

A PBX holds a ``CTI_LOOKUP_KEYS`` key (contract section 1): it looks callers up and can never place
a call. Every PBX test uses these two names."""

from .conftest import LOOKUP_KEY

PBX_KEY = LOOKUP_KEY
PBX_KEY_ENV: dict[str, str] = {"CTI_LOOKUP_KEYS": PBX_KEY}
