"""The store's parts: each implementation offers every method of its protocol, with the protocol's
parameters (names, kinds, defaults), and each whole store is a container of its named parts, built
on one database (and one Redis), with nothing of theirs mixed into it."""

from __future__ import annotations

import inspect

import pytest

from middleware.store import (
    Board,
    Callbacks,
    Claims,
    Erasures,
    Events,
    Journal,
    NumberData,
    Reports,
    Retention,
    SandboxCrm,
    Store,
)
from middleware.store.redis import RedisClaims
from middleware.store.redis_board import RedisBoard
from middleware.store.redis_events import RedisEvents
from middleware.store.redis_privacy import RedisClaimNumbers, RedisErasures, RedisEventNumbers
from middleware.store.shared import SharedStore
from middleware.store.sql import (
    SqlBoard,
    SqlCallbacks,
    SqlClaimNumbers,
    SqlClaims,
    SqlErasures,
    SqlEventNumbers,
    SqlEvents,
    SqlJournal,
    SqlJournalNumbers,
    SqlReports,
    SqlRetention,
    SqlSandbox,
    SqlStore,
)


def members(*protocols) -> list[str]:
    """The public methods the protocols declare themselves."""
    return sorted(
        name
        for protocol in protocols
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and not name.startswith("_")
    )


#: every part of the store, by name: its protocol, and its class in each store
PARTS = {
    "claims": (Claims, SqlClaims, RedisClaims),
    "events": (Events, SqlEvents, RedisEvents),
    "journal": (Journal, SqlJournal, SqlJournal),
    "sandbox": (SandboxCrm, SqlSandbox, SqlSandbox),
    "callbacks": (Callbacks, SqlCallbacks, SqlCallbacks),
    "board": (Board, SqlBoard, RedisBoard),
    "reports": (Reports, SqlReports, SqlReports),
    "retention": (Retention, SqlRetention, SqlRetention),
    "journal_numbers": (NumberData, SqlJournalNumbers, SqlJournalNumbers),
    "event_numbers": (NumberData, SqlEventNumbers, RedisEventNumbers),
    "claim_numbers": (NumberData, SqlClaimNumbers, RedisClaimNumbers),
    "erasures": (Erasures, SqlErasures, RedisErasures),
}
FEWEST = {NumberData: 2, Erasures: 3, Events: 3}  # methods a protocol declares at least (else 4)


def parameters(function) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize(
    ("protocol", "implementation"),
    [
        (Claims, SqlClaims),
        (Claims, RedisClaims),
        (Events, SqlEvents),
        (Events, RedisEvents),
        (Journal, SqlJournal),
        (SandboxCrm, SqlSandbox),
        (Callbacks, SqlCallbacks),
        (NumberData, SqlJournalNumbers),
        (NumberData, SqlEventNumbers),
        (NumberData, SqlClaimNumbers),
        (NumberData, RedisEventNumbers),
        (NumberData, RedisClaimNumbers),
        (Erasures, SqlErasures),
        (Erasures, RedisErasures),
        (Store, SqlStore),
        (Store, SharedStore),
    ],
)
def test_an_implementation_has_every_method_of_its_protocol(protocol, implementation):
    names = members(protocol)
    assert len(names) >= (2 if protocol is Store else FEWEST.get(protocol, 4))
    for name in names:
        found = getattr(implementation, name, None)
        assert callable(found), f"{implementation.__name__} lacks {name}"
        assert parameters(found) == parameters(getattr(protocol, name)), name


def test_the_store_protocol_is_its_named_parts_and_check_and_close():
    assert Store.__annotations__ == {name: part[0].__name__ for name, part in PARTS.items()}
    assert members(Store) == ["check", "close"]
    assert not {part[0] for part in PARTS.values()} & set(Store.__mro__)  # named, not inherited
    journal = members(Journal)
    assert "add_leg" in journal and not [name for name in journal if name.startswith("journal")]


@pytest.mark.parametrize(
    ("protocol", "implementation"),
    [(Board, SqlBoard), (Board, RedisBoard), (Reports, SqlReports)],
)
def test_a_composed_part_has_every_method_of_its_protocol(protocol, implementation):
    names = members(protocol)
    assert names, protocol
    for name in names:
        assert parameters(getattr(implementation, name)) == parameters(getattr(protocol, name))


def test_each_store_holds_its_parts_built_on_one_database_and_one_redis(tmp_path, redis_url):
    sql = SqlStore(str(tmp_path / "one.sqlite3"))
    shared = SharedStore(redis_url, sql.db)
    try:
        for name, (_, in_sql, in_shared) in PARTS.items():
            assert (type(getattr(sql, name)), type(getattr(shared, name))) == (in_sql, in_shared)
        parts = [getattr(store, name) for store in (sql, shared) for name in PARTS]
        assert {part.db for part in parts if hasattr(part, "db")} == {sql.db}
        assert {part.url for part in parts if hasattr(part, "url")} == {redis_url}
        assert shared.board.events is shared.events  # the board announces on the store's log
        inherited = set(dir(SqlStore)) | set(dir(SharedStore))
        every = members(*{part[0] for part in PARTS.values()})
        assert not set(every) & inherited  # composed, not mixed in
    finally:
        sql.close()
