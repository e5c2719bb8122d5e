"""A forked child makes its own per-process resources (``middleware/runtime/forks.py``): real forks."""

from __future__ import annotations

import json
import os
import threading

from middleware.runtime import background, logs
from middleware.runtime.forks import PerProcess
from middleware.store.redis import client as redis_client
from middleware.store.sql import SqlStore
from middleware.store.sql.commit import WriterTurn


def in_a_forked_child(work) -> object:
    """``work()``'s JSON-able result, computed in a forked child of this process."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, never return into pytest
        code = 0
        try:
            os.write(write, json.dumps(work()).encode())
        except BaseException as exc:
            os.write(write, json.dumps({"error": repr(exc)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    result = json.loads(answer)
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


def test_a_per_process_value_is_made_once_per_process_and_again_in_a_forked_child():
    made: list[int] = []
    holder = PerProcess(lambda: made.append(os.getpid()) or object())
    ours = holder.get()
    assert holder.get() is ours and holder.peek() is ours

    def child():
        fresh = holder.peek() is None
        value = holder.get()
        return [fresh, value is not ours, holder.get() is value, made[-1] == os.getpid()]

    assert in_a_forked_child(child) == [True, True, True, True]
    assert holder.get() is ours  # the parent keeps its own


def test_the_background_pool_runs_work_in_a_forked_child():
    """The parent's pool threads do not survive a fork: the child's work needs a pool of its own."""
    assert background.submit(threading.get_ident).result(timeout=5)

    def child():
        return background.submit(os.getpid).result(timeout=5) == os.getpid()

    assert in_a_forked_child(child) is True


def test_request_ids_of_a_forked_child_have_a_prefix_of_their_own():
    ours = logs.request_id(None)

    def child():
        return logs.request_id(None)[:16]

    assert in_a_forked_child(child) != ours[:16]


def test_a_forked_child_lets_go_of_its_parents_value_through_in_child():
    let_go: list[object] = []
    holder = PerProcess(object, in_child=let_go.append)
    ours = holder.get()

    def child():
        return [let_go == [ours], holder.get() is not ours]

    assert in_a_forked_child(child) == [True, True]
    assert let_go == [] and holder.get() is ours


def test_a_sqlite_store_used_before_a_fork_writes_and_reads_in_the_child(tmp_path):
    """The child gets its own engine, connection, group commit and writers' flock: its writes
    commit, and the parent reads them (and goes on writing) afterwards."""
    store = SqlStore(str(tmp_path / "fork.sqlite3"))
    store.journal.add("pbx", "parent-1", {"n": 1})  # the parent's engine, connection and turn

    def child():
        entry = store.journal.add("pbx", "child-1", {"n": 2})
        return [e.key for e in store.journal.list(limit=10)] + [entry is not None]

    keys = in_a_forked_child(child)
    assert sorted(keys[:-1]) == ["child-1", "parent-1"] and keys[-1] is True
    store.journal.add("pbx", "parent-2", {"n": 3})
    assert sorted(e.key for e in store.journal.list(limit=10)) == [
        "child-1",
        "parent-1",
        "parent-2",
    ]


def test_the_writers_flock_excludes_a_forked_child_while_the_parent_holds_it(tmp_path):
    """A flock belongs to the open file: a child using its parent's descriptor would take the
    lock the parent holds at once. Its own descriptor waits until the parent lets go."""
    turn = WriterTurn(str(tmp_path / "turn.lock"))
    with turn():
        pass  # the parent's descriptor is open
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    with turn():
        pid = os.fork()
        if pid == 0:
            try:
                taken = threading.Event()

                def take():
                    with turn():
                        taken.set()

                threading.Thread(target=take, daemon=True).start()
                os.write(to_parent_w, b"1" if taken.wait(0.5) else b"0")  # while the parent holds
                os.read(to_child_r, 1)  # the parent has let go
                os.write(to_parent_w, b"1" if taken.wait(10) else b"0")
            finally:
                os._exit(0)
        while_held = os.read(to_parent_r, 1)
    os.write(to_child_w, b"go")
    after = os.read(to_parent_r, 1)
    os.waitpid(pid, 0)
    for fd in (to_child_r, to_child_w, to_parent_r, to_parent_w):
        os.close(fd)
    assert (while_held, after) == (b"0", b"1")


def test_a_forked_child_makes_its_own_redis_client():
    """No connection is opened to make a client: no server needed."""
    ours = redis_client("redis://127.0.0.1:1/0")
    assert redis_client("redis://127.0.0.1:1/0") is ours

    def child():
        theirs = redis_client("redis://127.0.0.1:1/0")
        return [theirs is not ours, redis_client("redis://127.0.0.1:1/0") is theirs]

    assert in_a_forked_child(child) == [True, True]
