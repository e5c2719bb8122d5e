"""The SQL store's promises, each checked on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError

from devtools.processes import free_port
from devtools.waiting import wait_until
from middleware.errors import UpstreamUnavailable
from middleware.store import DONE, FAILED, OWNER, PENDING, BoardLeg
from middleware.store.journal import CallState
from middleware.store.migrations import VERSION
from middleware.store.sql import SqlStore, schema_version
from middleware.store.sql.tables import journal

from .pg_server import PASSWORD


@pytest.fixture
def store(sql_database):
    store = SqlStore(sql_database)
    yield store
    store.close()


def stores(database: str, count: int) -> list[SqlStore]:
    """Separate store objects: separate engines and pools, as separate processes or hosts have."""
    return [SqlStore(database) for _ in range(count)]


# claims ------------------------------------------------------------------------------------------


def test_first_claim_owns_the_key_and_the_next_sees_it_pending(store):
    first = store.claims.claim("k", lease=30, fingerprint="f1")
    second = store.claims.claim("k", lease=30, fingerprint="f2")

    assert first.state == OWNER
    assert (second.state, second.token, second.fingerprint) == (PENDING, first.token, "f1")


def test_completed_claim_replays_its_answer_until_the_ttl_runs_out(store):
    token = store.claims.claim("k", lease=30).token
    store.claims.complete("k", token, status=201, body='{"a": 1}', ttl=0.3)

    replay = store.claims.claim("k", lease=30)
    assert (replay.state, replay.status, replay.body) == (DONE, 201, '{"a": 1}')
    time.sleep(0.35)
    assert store.claims.claim("k", lease=30).state == OWNER


def test_failed_claim_is_readable_but_taken_over_at_once(store):
    token = store.claims.claim("k", lease=30).token
    store.claims.fail("k", token, body="problem", ttl=5)

    assert (store.claims.peek("k").state, store.claims.peek("k").body) == (FAILED, "problem")
    retaken = store.claims.claim("k", lease=30)
    assert retaken.state == OWNER and retaken.token != token


def test_expired_lease_and_released_claim_free_the_key(store):
    store.claims.claim("lease", lease=0.05)
    time.sleep(0.1)
    assert store.claims.claim("lease", lease=30).state == OWNER

    token = store.claims.claim("released", lease=30).token
    store.claims.release("released", token)
    assert store.claims.peek("released") is None
    assert store.claims.claim("released", lease=30).state == OWNER


def test_only_the_owner_token_settles_a_claim(store):
    token = store.claims.claim("k", lease=30).token
    store.claims.complete("k", "not-the-token", status=200, body="x", ttl=30)
    store.claims.release("k", "not-the-token")

    assert store.claims.peek("k").state == PENDING
    assert store.claims.peek("k").token == token


def test_concurrent_claims_from_separate_stores_make_one_owner(sql_database):
    many = stores(sql_database, 8)
    start = threading.Barrier(len(many))

    def claim(store):
        start.wait()
        return store.claims.claim("dedupe:6000:+27721234567", lease=30).state

    with ThreadPoolExecutor(len(many)) as pool:
        states = list(pool.map(claim, many))

    assert sorted(states) == [OWNER] + [PENDING] * 7


# rate windows ------------------------------------------------------------------------------------


def test_rate_window_allows_the_limit_then_says_when_one_frees(store):
    assert [store.claims.hit_rate("rate:6000", limit=3, window=60) for _ in range(3)] == [0, 0, 0]
    wait = store.claims.hit_rate("rate:6000", limit=3, window=60)

    assert 59 <= wait <= 60
    assert store.claims.hit_rate("rate:6001", limit=3, window=60) == 0  # per key


def test_rate_window_slides(store):
    # The window must outlast the gap between the first two hits on a loaded runner (a 0.2 s
    # window once let the second hit in, its first already slid out).
    store.claims.hit_rate("r", limit=1, window=1)
    assert store.claims.hit_rate("r", limit=1, window=1) >= 1
    time.sleep(1.05)
    assert store.claims.hit_rate("r", limit=1, window=1) == 0


def test_concurrent_hits_from_separate_stores_never_exceed_the_limit(sql_database):
    many = stores(sql_database, 6)
    start = threading.Barrier(len(many))

    def hit(store):
        start.wait()
        return [store.claims.hit_rate("rate:6000", limit=5, window=60) for _ in range(3)]

    with ThreadPoolExecutor(len(many)) as pool:
        waits = [wait for result in pool.map(hit, many) for wait in result]

    assert waits.count(0) == 5
    assert all(wait >= 1 for wait in waits if wait)


# journal -----------------------------------------------------------------------------------------


def test_journal_add_stores_a_key_once(store):
    entry, created = store.journal.add("pbx", "call-1", {"n": 1}, recording_url="http://r/1")
    again, created_again = store.journal.add("pbx", "call-1", {"n": 2})
    other, _ = store.journal.add("ibizfone", "call-1", {"n": 3})

    assert (created, created_again) == (True, False)
    assert again.id == entry.id and again.call_log == {"n": 1}
    assert entry.recording_url == "http://r/1" and entry.status == "pending"
    assert other.id != entry.id


def test_concurrent_adds_of_one_key_store_it_once(sql_database):
    many = stores(sql_database, 4)
    start = threading.Barrier(len(many))

    def add(store):
        start.wait()
        return store.journal.add("pbx", "same", {})

    with ThreadPoolExecutor(len(many)) as pool:
        results = list(pool.map(add, many))

    assert sum(created for _, created in results) == 1
    assert len({entry.id for entry, _ in results}) == 1


def test_ingests_and_delivery_marks_of_many_threads_each_commit_and_answer_their_own(store):
    """Adds and marks from many threads share transactions; each caller gets its own answer."""
    delivered = [store.journal.add("pbx", f"old-{n}", {"n": n})[0].id for n in range(20)]
    store.journal.claim("w", lease=30, now=time.time(), limit=20)
    start = threading.Barrier(40)

    def add(n):
        start.wait()
        entry, created = store.journal.add("pbx", f"new-{n}", {"n": n})
        return (entry.key, entry.call_log, created)

    def mark(entry_id):
        start.wait()
        return store.journal.delivered(entry_id, {"sent": entry_id})

    with ThreadPoolExecutor(40) as pool:
        adds = [pool.submit(add, n) for n in range(20)]
        marks = [pool.submit(mark, entry_id) for entry_id in delivered]
        assert [f.result() for f in adds] == [(f"new-{n}", {"n": n}, True) for n in range(20)]
        assert [f.result() for f in marks] == [True] * 20

    assert store.journal.counts() == {"pending": 20, "delivered": 20, "failed": 0}
    assert all(store.journal.get(i).call_log == {"sent": i} for i in delivered)


def test_writes_queued_while_another_process_commits_join_the_next_commit_on_sqlite(tmp_path):
    """The leader takes its batch once it has the writers' turn: what queued while another
    process's commit held the turn (here the flock, taken through another open file, as another
    process takes it) commits in one transaction, not the leader's write alone and then the rest."""
    database = str(tmp_path / "cti.sqlite3")
    store = SqlStore(database)
    other = os.open(f"{database}.lock", os.O_RDWR)
    commits, stop = _commits()
    try:
        fcntl.flock(other, fcntl.LOCK_EX)  # another process's commit in progress
        with ThreadPoolExecutor(4) as pool:
            try:
                adds = [pool.submit(store.journal.add, "pbx", f"k{n}", {"n": n}) for n in range(4)]
                wait_until(
                    lambda: store.db.group.queued() == 4,
                    5,
                    lambda: f"{store.db.group.queued()} of 4 writes queued while the turn was held",
                    interval=0.001,
                )
            finally:
                fcntl.flock(other, fcntl.LOCK_UN)
            assert [future.result()[1] for future in adds] == [True] * 4
    finally:
        stop()
        os.close(other)
        store.close()

    assert len(commits) == 1
    reopened = SqlStore(database)
    try:
        assert reopened.journal.counts()["pending"] == 4
    finally:
        reopened.close()


def _one_batch(store, writes: list) -> list:
    """Runs ``writes`` (functions of nothing) so that they share one group-commit transaction:
    the leader's write holds its own commit until they are all queued. Each one's outcome, a
    result or the exception it raised, in order."""
    holding, release = threading.Event(), threading.Event()

    def slow(conn, now):  # the leader's write: holds the transaction while others queue
        holding.set()
        release.wait(10)
        return "first"

    def outcome(write):
        try:
            return write()
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            return exc

    with ThreadPoolExecutor(len(writes) + 1) as pool:
        first = pool.submit(store.db.group.write, slow)
        assert holding.wait(10)
        queued = [pool.submit(outcome, write) for write in writes]
        wait_until(
            lambda: store.db.group.queued() >= len(writes),
            10,
            "the writes never queued",
            interval=0.001,
        )
        release.set()
        assert first.result() == "first"
        return [future.result() for future in queued]


def test_a_write_that_fails_on_its_own_fails_alone_and_the_rest_of_its_batch_commits(store):
    """One transaction, one write that cannot be encoded and one that breaks a constraint, in
    the middle of the order: each fails with its own error, every other write commits."""
    earlier = store.journal.add("pbx", "earlier", {})[0]
    store.journal.claim("w", lease=30, now=time.time(), limit=1)

    def null_key(conn, now):
        return conn.execute(
            journal.insert().values(
                source="pbx",
                key=None,
                status="pending",
                next_attempt_at=now,
                created_at=now,
                call_log="{}",
            )
        )

    outcomes = _one_batch(
        store,
        [
            lambda: store.journal.add("pbx", "a-kept", {"n": 1}),
            lambda: store.journal.add("pbx", "m-\ud800", {}),
            lambda: store.db.group.write(null_key, order=("pbx", "n")),
            lambda: store.journal.add_leg("z-kept", "leg-1", "call:ring", {}, summarise=_ringing),
            lambda: store.events.add("ring", "6001", {"n": 2}),
            lambda: store.journal.delivered(earlier.id, {"sent": True}),
        ],
    )

    added, unencodable, constraint, leg, event, delivered = outcomes
    assert (added[0].key, added[0].call_log, added[1]) == ("a-kept", {"n": 1}, True)
    assert isinstance(unencodable, UnicodeEncodeError)
    assert isinstance(constraint, IntegrityError)
    assert (leg[0].key, leg[1]) == ("z-kept", True)
    assert isinstance(event, int) and store.events.after(0)[-1].payload == {"n": 2}
    assert delivered is True
    assert store.journal.counts() == {"pending": 2, "delivered": 1, "failed": 0}
    assert {e.key for e in store.journal.list(limit=10)} == {"earlier", "a-kept", "z-kept"}


def _leg(leg: str, number: str = "+27721234567") -> BoardLeg:
    now = time.time()
    return BoardLeg(leg, "6001", f"call-{leg}", "inbound", number, "ringing", now, now)


_ANNOUNCE = ("board", "*board", {"extension": "6001"})


def _commits():
    """The transactions committed meanwhile (every engine's, so the store's)."""
    commits = []

    def counted(conn):
        commits.append(conn)

    sa_event.listen(Engine, "commit", counted)
    return commits, lambda: sa_event.remove(Engine, "commit", counted)


def test_a_board_leg_rides_the_journal_leg_of_its_event_in_one_transaction(store):
    commits, stop = _commits()
    try:
        with store.journal.together():
            assert store.board.board_leg(_leg("r1"), now=time.time(), announce=_ANNOUNCE) is None
            entry, created = store.journal.add_leg(
                "call-r1", "r1", "call:ring", {}, summarise=_ringing
            )
    finally:
        stop()

    assert created and len(commits) == 1
    state = store.board.board_agent("6001", since=time.time() - 60)
    assert [leg.leg for leg in state.legs] == ["r1"]
    assert store.events.after(0)[-1].payload == {"extension": "6001"}


def test_a_board_leg_that_fails_on_its_own_leaves_the_journal_leg_committed(store, caplog):
    with store.journal.together():
        store.board.board_leg(_leg("r2", number="+2772\ud800"), now=time.time(), announce=_ANNOUNCE)
        entry, created = store.journal.add_leg("call-r2", "r2", "call:ring", {}, summarise=_ringing)

    assert created and [e.key for e in store.journal.list(limit=5)] == ["call-r2"]
    assert store.board.board_agent("6001", since=time.time() - 60).legs == ()
    assert "the board's leg is not written (UnicodeEncodeError)" in caplog.text


def test_a_board_leg_is_not_written_when_the_journal_leg_it_rides_with_fails_on_its_own(store):
    with pytest.raises(UnicodeEncodeError), store.journal.together():
        store.board.board_leg(_leg("r5"), now=time.time(), announce=_ANNOUNCE)
        store.journal.add_leg("call-\ud800", "r5", "call:ring", {}, summarise=_ringing)

    assert store.journal.list(limit=5) == []
    assert store.board.board_agent("6001", since=time.time() - 60).legs == ()
    assert store.events.after(0) == []


def test_a_board_leg_left_over_is_written_at_the_blocks_end_and_dropped_when_it_raises(store):
    with store.journal.together():
        store.board.board_leg(_leg("r3"), now=time.time(), announce=_ANNOUNCE)
    with pytest.raises(RuntimeError), store.journal.together():
        store.board.board_leg(_leg("r4"), now=time.time(), announce=_ANNOUNCE)
        raise RuntimeError("the journal's write failed first")

    state = store.board.board_agent("6001", since=time.time() - 60)
    assert [leg.leg for leg in state.legs] == ["r3"]


def _inserts(table: str):
    """The INSERTs into ``table`` run meanwhile (every engine's, so the stores')."""
    seen = []

    def counted(conn, cursor, statement, *args):
        if statement.startswith(f"INSERT INTO {table} "):
            seen.append(statement)

    sa_event.listen(Engine, "before_cursor_execute", counted)
    return seen, lambda: sa_event.remove(Engine, "before_cursor_execute", counted)


def test_an_agents_seen_row_is_written_until_one_committed_then_left_out(store, sql_database):
    """The board lists an agent from its row; a process leaves the row's insert out of later legs
    only once it has committed one (a row is never deleted)."""
    inserts, stop = _inserts("board_agents")
    try:
        with pytest.raises(UnicodeEncodeError), store.journal.together():  # its journal leg fails
            store.board.board_leg(_leg("s1"), now=time.time(), announce=_ANNOUNCE)
            store.journal.add_leg("call-\ud800", "s1", "call:ring", {}, summarise=_ringing)
        with store.journal.together():  # fails on its own
            store.board.board_leg(_leg("s2", "+2772\ud800"), now=time.time(), announce=_ANNOUNCE)
            store.journal.add_leg("call-s2", "s2", "call:ring", {}, summarise=_ringing)
        assert store.board.board_agents(since=time.time() - 60) == []
        for leg in ("s3", "s4", "s5"):
            with store.journal.together():
                store.board.board_leg(_leg(leg), now=time.time(), announce=_ANNOUNCE)
                store.journal.add_leg(f"call-{leg}", leg, "call:ring", {}, summarise=_ringing)
    finally:
        stop()

    (agent,) = store.board.board_agents(since=time.time() - 60)
    assert (agent.extension, [leg.leg for leg in agent.legs]) == ("6001", ["s3", "s4", "s5"])
    assert len(inserts) == 3  # s1's and s2's, rolled back, and s3's; none for s4 and s5
    other = SqlStore(sql_database)  # another process: its first leg writes the row again
    inserts, stop = _inserts("board_agents")
    try:
        for leg in ("s6", "s7"):
            with other.journal.together():
                other.board.board_leg(_leg(leg), now=time.time(), announce=_ANNOUNCE)
    finally:
        stop()
        other.close()
    assert len(inserts) == 1


def _ringing(events, created_at):
    return CallState(call_log={}, agent=None, legs=[], due_at=created_at + 3600, recording_url=None)


def test_a_write_that_reports_the_database_failed_fails_its_whole_batch_and_the_next_commits(
    store,
):
    def unavailable(conn, now):
        raise UpstreamUnavailable(store.db.backend, "the database failed mid-batch")

    outcomes = _one_batch(
        store,
        [
            lambda: store.journal.add("pbx", "lost", {}),
            lambda: store.db.group.write(unavailable, order=("pbx", "m")),
        ],
    )

    assert all(isinstance(o, UpstreamUnavailable) for o in outcomes), outcomes
    entry, created = store.journal.add("pbx", "next", {})
    assert created and store.journal.counts()["pending"] == 1  # "lost" was rolled back


def test_a_connection_lost_mid_batch_fails_every_write_of_it_and_the_next_commits(store):
    """PostgreSQL: the server ends the batch's connection (a real database failure, a 503)."""
    if not store.db.postgresql:
        pytest.skip("a server that ends a connection is PostgreSQL's")

    def killed(conn, now):
        conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")

    outcomes = _one_batch(
        store,
        [
            lambda: store.journal.add("pbx", "lost", {}),
            lambda: store.db.group.write(killed, order=("pbx", "m")),
            lambda: store.journal.add("pbx", "z-lost", {}),
        ],
    )

    assert all(isinstance(o, UpstreamUnavailable) for o in outcomes), outcomes
    entry, created = store.journal.add("pbx", "next", {})
    assert created and store.journal.counts()["pending"] == 1


def test_journal_claim_deliver_retry_fail_and_requeue(store):
    first, _ = store.journal.add("pbx", "a", {"n": 1})
    second, _ = store.journal.add("pbx", "b", {"n": 2})
    now = time.time()

    [claimed] = store.journal.claim("w1", lease=30, now=now)
    assert (claimed.id, claimed.attempts) == (first.id, 1)
    assert [e.id for e in store.journal.claim("w2", lease=30, now=now)] == [second.id]
    assert store.journal.claim("w3", lease=30, now=now) == []  # both claimed

    assert store.journal.delivered(first.id, {"n": 1, "sent": True})
    assert not store.journal.delivered(first.id, {})  # not pending any more
    assert not store.journal.retry_later(second.id, "w1", at=now + 5, error="x")  # not w1's
    assert store.journal.retry_later(second.id, "w2", at=now + 5, error="503")
    assert store.journal.claim("w3", lease=30, now=now) == []  # not due yet
    [retried] = store.journal.claim("w3", lease=30, now=now + 5)
    assert (retried.id, retried.attempts, retried.last_error) == (second.id, 2, "503")
    assert store.journal.failed(second.id, "w3", error="400 bad")

    requeued = store.journal.requeue(second.id)
    assert (requeued.status, requeued.attempts) == ("pending", 0)
    assert store.journal.requeue(first.id).status == "delivered"  # left as it is
    assert store.journal.requeue(10**12) is None
    assert store.journal.get(first.id).call_log == {"n": 1, "sent": True}
    assert store.journal.get(first.id).delivered_at is not None
    assert store.journal.counts() == {"pending": 1, "delivered": 1, "failed": 0}


def test_claim_of_a_dead_owner_is_taken_up_after_its_lease(store):
    entry, _ = store.journal.add("pbx", "a", {})
    now = time.time()
    store.journal.claim("dead", lease=30, now=now)

    assert store.journal.claim("alive", lease=30, now=now + 29) == []
    assert [e.id for e in store.journal.claim("alive", lease=30, now=now + 30)] == [entry.id]


def test_a_batch_claim_takes_the_earliest_due_in_one_go(store):
    ids = [store.journal.add("pbx", f"k{n}", {"n": n})[0].id for n in range(5)]
    now = time.time()
    store.journal.retry_later(ids[0], "nobody", at=now, error="")  # not claimed: unchanged

    batch = store.journal.claim("w1", lease=30, now=now + 1, limit=3)

    assert [e.id for e in batch] == ids[:3]
    assert {e.attempts for e in batch} == {1}
    assert [e.call_log for e in batch] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [e.id for e in store.journal.claim("w2", lease=30, now=now + 1, limit=10)] == ids[3:]
    assert store.journal.claim("w3", lease=30, now=now + 1, limit=10) == []


def test_a_dead_claimers_batch_is_taken_up_after_its_lease(store):
    ids = [store.journal.add("pbx", f"k{n}", {})[0].id for n in range(4)]
    now = time.time()
    assert len(store.journal.claim("dead", lease=30, now=now, limit=4)) == 4

    assert store.journal.claim("alive", lease=30, now=now + 29, limit=10) == []
    retaken = store.journal.claim("alive", lease=30, now=now + 30, limit=10)
    assert [e.id for e in retaken] == ids
    assert {e.attempts for e in retaken} == {2}  # the dead claim counted one each
    assert not store.journal.retry_later(ids[0], "dead", at=now, error="late")  # not its own


def test_released_claims_are_due_at_once_with_the_attempt_taken_back(store):
    ids = [store.journal.add("pbx", f"k{n}", {})[0].id for n in range(3)]
    now = time.time()
    store.journal.claim("w1", lease=30, now=now, limit=3)
    assert store.journal.delivered(ids[0], {})

    assert store.journal.release("w2", ids) == 0  # not its claims
    assert store.journal.release("w1", ids) == 2  # the delivered one is left as it is
    assert store.journal.release("w1", []) == 0
    again = store.journal.claim("w2", lease=30, now=now, limit=3)
    assert [(e.id, e.attempts) for e in again] == [(ids[1], 1), (ids[2], 1)]
    assert store.journal.get(ids[0]).status == "delivered"


def test_journal_list_pages_newest_first_by_status(store):
    ids = [store.journal.add("pbx", f"k{n}", {})[0].id for n in range(5)]
    store.journal.delivered(ids[1], {})

    assert [e.id for e in store.journal.list(limit=2)] == ids[:2:-1][:2]
    assert [e.id for e in store.journal.list(limit=10, before=ids[3])] == ids[2::-1]
    assert [e.id for e in store.journal.list(status="delivered")] == [ids[1]]
    assert [e.id for e in store.journal.list(status="pending", before=ids[2])] == [ids[0]]


def test_concurrent_claimers_on_separate_stores_never_share_an_entry(sql_database):
    seed = SqlStore(sql_database)
    for n in range(60):
        seed.journal.add("pbx", f"k{n}", {})
    many = stores(sql_database, 4)
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer(index):
        store = many[index]
        # Batches of different sizes, so claims of several entries overlap single ones.
        while batch := store.journal.claim(
            f"w{index}", lease=30, now=time.time(), limit=1 + index * 3
        ):
            with lock:
                claimed.extend(entry.id for entry in batch)

    with ThreadPoolExecutor(len(many)) as pool:
        list(pool.map(claimer, range(len(many))))

    assert sorted(claimed) == sorted(e.id for e in seed.journal.list(limit=100))
    assert len(claimed) == 60


# events ------------------------------------------------------------------------------------------


def test_event_ids_increase_across_stores_and_filter_by_agent(sql_database):
    first, second = stores(sql_database, 2)
    ids = [
        first.events.add("call:ring", "6001", {"n": 1}),
        second.events.add("call:ring", "6002", {"n": 2}),
        first.events.add("call:ring", "6001", {"n": 3}),
    ]

    assert ids == sorted(ids) and len(set(ids)) == 3
    assert second.events.last_id() == ids[2]
    assert [e.payload for e in second.events.after(ids[0], agent="6001")] == [{"n": 3}]
    assert [e.id for e in first.events.after(0)] == ids


def test_concurrent_event_writers_never_publish_an_id_below_one_already_seen(sql_database):
    """A reader that has seen id N must never later find a new event below N."""
    writers = stores(sql_database, 4)
    reader = SqlStore(sql_database)
    stop = threading.Event()
    missed: list[int] = []

    def read():
        seen: set[int] = set()
        newest = 0
        while not stop.is_set():
            for event in reader.events.after(0, limit=10_000):
                if event.id not in seen and event.id < newest:
                    missed.append(event.id)
                seen.add(event.id)
                newest = max(newest, event.id)

    watcher = threading.Thread(target=read)
    watcher.start()
    with ThreadPoolExecutor(len(writers)) as pool:
        list(pool.map(lambda w: [w.events.add("ring", "6000", {}) for _ in range(25)], writers))
    stop.set()
    watcher.join()

    assert missed == []


# schema ------------------------------------------------------------------------------------------


def test_schema_is_created_on_start_with_its_version_row(sql_database):
    SqlStore(sql_database)
    store = SqlStore(sql_database)  # a second start finds everything in place

    with store.db.reading() as conn:
        assert conn.execute(schema_version.select()).all() == [(VERSION,)]


# failures ----------------------------------------------------------------------------------------


def test_unreachable_postgresql_is_a_503_naming_it_without_the_url(caplog):
    url = f"postgresql://cti:{PASSWORD}@127.0.0.1:{free_port()}/cti"
    store = SqlStore(url)  # a server down at start-up delays only readiness

    with pytest.raises(UpstreamUnavailable) as raised:
        store.check()
    with pytest.raises(UpstreamUnavailable):
        store.journal.add("pbx", "k", {})

    assert raised.value.status == 503 and raised.value.code == "upstream_unavailable"
    assert raised.value.detail.startswith("postgresql:")
    assert PASSWORD not in str(raised.value.to_dict())
    assert "postgresql unavailable" in caplog.text


def test_postgresql_connections_dropped_by_the_server_cost_no_request(postgres_url):
    import psycopg

    store = SqlStore(postgres_url)
    store.journal.add("pbx", "before", {})
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

    assert store.journal.add("pbx", "after", {})[1] is True


def test_a_commit_that_failed_leaves_the_connection_ready_for_the_next_write(store):
    """A COMMIT can fail (a disk that filled up; here a deferred foreign key, which fails the same
    way, at the COMMIT): the next transaction on that thread's connection must work, not find a
    transaction still open there (every write after answered 500 until a restart)."""
    db = store.db
    if not db.postgresql:  # SQLite checks foreign keys only when asked (per connection)
        with db.reading() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys = ON")
    with db.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql(
            "CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )

    with pytest.raises(IntegrityError):  # the COMMIT fails: no parent 42
        with db.transaction() as conn:
            conn.exec_driver_sql("INSERT INTO child VALUES (42)")

    store.check()  # the readiness probe writes, and works at once
    assert store.journal.add("pbx", "after", {})[1] is True
    with db.reading() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM child").scalar() == 0
