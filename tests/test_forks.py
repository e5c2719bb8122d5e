"""A forked child makes its own per-process resources (``middleware/forks.py``): real forks."""

from __future__ import annotations

import json
import os
import threading

from middleware import background, logs
from middleware.forks import PerProcess


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
