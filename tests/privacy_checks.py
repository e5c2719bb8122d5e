"""What the privacy tests look for: every spelling of a number, and everything a store holds
(every row of every SQL table, every Redis key and value) as one text to search."""

from __future__ import annotations

import json

import redis
from sqlalchemy import select

from middleware.store.sql.tables import metadata

JAMES_NUMBER = "+27721234567"
#: The spellings of James's number that may show up anywhere: E.164, international, national.
JAMES_SPELLINGS = ("+27721234567", "27721234567", "0721234567", "072 123 4567", "%2B27721234567")
NOMSA_NUMBER = "+27829876543"


def stored_text(store) -> str:
    """Every row of every table of the store's SQL database and, for a shared store, every key
    and value of its Redis, as one text."""
    parts = []
    with store.db.reading() as conn:
        for table in metadata.sorted_tables:
            parts += [json.dumps([str(v) for v in row]) for row in conn.execute(select(table))]
    url = getattr(store, "url", None)
    if url is not None:
        client = redis.Redis.from_url(url, decode_responses=True)
        for key in client.scan_iter():
            kind = client.type(key)
            value = {
                "string": client.get,
                "hash": client.hgetall,
                "zset": lambda k: client.zrange(k, 0, -1),
                "list": lambda k: client.lrange(k, 0, -1),
                "set": client.smembers,
            }[kind](key)
            parts.append(f"{key} {value}")
    return "\n".join(parts)


def spellings_in(text: str, spellings=JAMES_SPELLINGS) -> list[str]:
    return [spelling for spelling in spellings if spelling in text]
