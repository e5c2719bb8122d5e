"""The store's parts: each implementation offers every method of its protocol, with the protocol's
parameters (names, kinds, defaults), and each whole store is the sum of its parts."""

from __future__ import annotations

import inspect

import pytest

from middleware.store import (
    Board,
    Callbacks,
    Claims,
    Erasures,
    Journal,
    NumberData,
    Reports,
    SandboxCrm,
    Store,
)
from middleware.store.redis import RedisClaims
from middleware.store.redis_board import RedisBoard
from middleware.store.redis_privacy import RedisClaimNumbers, RedisErasures, RedisEventNumbers
from middleware.store.shared import SharedStore
from middleware.store.sql import (
    SqlBoard,
    SqlCallbacks,
    SqlClaimNumbers,
    SqlClaims,
    SqlErasures,
    SqlEventNumbers,
    SqlJournal,
    SqlJournalNumbers,
    SqlReports,
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


WHOLE = (Store, Claims, Journal, SandboxCrm)


def parameters(function) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize(
    ("protocol", "implementation"),
    [
        (Claims, SqlClaims),
        (Claims, RedisClaims),
        (Journal, SqlJournal),
        (SandboxCrm, SqlSandbox),
        (Callbacks, SqlCallbacks),
        (WHOLE, SqlStore),
        (WHOLE, SharedStore),
        (NumberData, SqlJournalNumbers),
        (NumberData, SqlEventNumbers),
        (NumberData, SqlClaimNumbers),
        (NumberData, RedisEventNumbers),
        (NumberData, RedisClaimNumbers),
        (Erasures, SqlErasures),
        (Erasures, RedisErasures),
    ],
)
def test_an_implementation_has_every_method_of_its_protocol(protocol, implementation):
    protocols = protocol if isinstance(protocol, tuple) else (protocol,)
    names = members(*protocols)
    assert len(names) >= (2 if protocol is NumberData else 3 if protocol is Erasures else 4)
    for name in names:
        found = getattr(implementation, name, None)
        assert callable(found), f"{implementation.__name__} lacks {name}"
        declared = next(p for p in protocols if name in vars(p))
        assert parameters(found) == parameters(getattr(declared, name)), name


def test_the_store_protocol_is_its_three_parts_and_check_and_close():
    assert {Claims, Journal, SandboxCrm} <= set(Store.__mro__)
    assert members(Store) == ["check", "close"]
    parts = [set(members(part)) for part in (Claims, Journal, SandboxCrm)]
    assert sum(map(len, parts)) == len(set().union(*parts))  # no method in two parts


@pytest.mark.parametrize(
    ("protocol", "implementation"),
    [(Board, SqlBoard), (Board, RedisBoard), (Reports, SqlReports)],
)
def test_a_composed_part_has_every_method_of_its_protocol(protocol, implementation):
    names = members(protocol)
    assert names, protocol
    for name in names:
        assert parameters(getattr(implementation, name)) == parameters(getattr(protocol, name))


def test_each_store_holds_its_board_and_reports_as_parts(tmp_path, redis_url):
    sql = SqlStore(str(tmp_path / "one.sqlite3"))
    shared = SharedStore(redis_url, sql.db)
    try:
        assert {"board": "Board", "reports": "Reports"}.items() <= Store.__annotations__.items()
        assert (type(sql.board), type(sql.reports)) == (SqlBoard, SqlReports)
        assert (type(shared.board), type(shared.reports)) == (RedisBoard, SqlReports)
        inherited = set(dir(SqlStore)) | set(dir(SharedStore))
        assert not set(members(Board, Reports)) & inherited  # composed, not mixed in
    finally:
        sql.close()
