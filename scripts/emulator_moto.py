"""What makes moto's DynamoDB behave as DynamoDB does, for scripts/emulator.py.

Two fixes, both needed by the product's guarantees under test:

WHY THE LOCK (`SerialiseDynamoDB`): moto's DynamoDB backend evaluates a ConditionExpression
and then applies the write as two separate Python steps, with no lock around them, while the
werkzeug server runs each request on its own thread. Two concurrent conditional writes can
therefore both pass their condition (two orders for one cart, an order both cancelled and
shipped) even though real DynamoDB makes each conditional write and each transaction atomic.
Handling one DynamoDB request at a time restores that guarantee, so the concurrency tests
exercise the product's conditions and not moto's races. The response body is materialised
inside the lock because moto builds it lazily from live backend state. SQS, EventBridge and
the rest stay fully concurrent (long polls must not block the table).

WHY THE STREAM PATCH (`keep_streams_across_rollbacks`): moto's TransactWriteItems deep-copies
every table it names before it starts and, when the transaction is cancelled (a condition that
did not hold: a replayed create, a redelivered reservation), puts the copy back in the table's
place. The copy carries a copy of the table's stream shard, so every shard iterator already
handed out (the local stack's stream poller holds one) keeps reading the old shard, which never
grows again: the event pipeline silently stops. The patch gives the restored table the live
shard back, without the records of the writes it rolled back, and spares the copy of the
stream's records (which also made every transaction slower as the stream grew). It also
takes that copy once per table and transaction: moto copies the whole table again for every
item the transaction names (identical copies, all taken before the first write), so a
transaction's cost grew with the table times its items, and a long run (make load's last
phases) saw transactions hold the DynamoDB lock for seconds and every other call time out.

The patch reaches into moto's internals (`DynamoDBBackend.transact_write_items`, `StreamShard`,
`table.stream_shard`), so it is only applied to the moto version it was written and checked
against, `PATCHED_FOR` (pinned in requirements-dev.txt); on any other version the emulator
refuses to start rather than patch blindly.
"""

from __future__ import annotations

import io
import threading
import time

# The X-Amz-Target prefixes of DynamoDB and DynamoDB Streams requests.
DYNAMODB_TARGET_PREFIXES = ("DynamoDB_", "DynamoDBStreams_")
# Where SerialiseDynamoDB leaves, in the request's environ, how long (seconds) the request
# waited for the lock and how long moto then worked on it (read by emulator_bench.py).
LOCK_WAIT_KEY = "orders.emulator.lock_wait"
SERVICE_KEY = "orders.emulator.service"
# The moto release keep_streams_across_rollbacks was written for and checked against: the
# one requirements-dev.txt pins. Bump both together, after reading the patch against the new
# release's moto/dynamodb/models.
PATCHED_FOR = "5.2.5"


def is_dynamodb(environ) -> bool:
    """A DynamoDB or DynamoDB Streams request."""
    return environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET_PREFIXES)


def read_body(environ) -> bytes | None:
    """Reads the request body and puts it back, readable again, for the app."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return None
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked transfer encoding
        body = stream.read()
    else:
        return None
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def materialise(result) -> bytes:
    """The whole body of a WSGI app's answer, its iterable closed."""
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


class SerialiseDynamoDB:
    """WSGI middleware: one DynamoDB / DynamoDB Streams request at a time (see WHY THE LOCK)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not is_dynamodb(environ):
            return self.app(environ, start_response)

        # Read the request body before taking the lock so that a slow client cannot
        # hold every other DynamoDB caller up while it sends.
        read_body(environ)

        waiting = time.perf_counter()
        with self.lock:
            serving = time.perf_counter()
            chunks = materialise(self.app(environ, start_response))
            # For the bench counters' timings (make load): queueing and serving, apart.
            environ[LOCK_WAIT_KEY] = serving - waiting
            environ[SERVICE_KEY] = time.perf_counter() - serving
        return [chunks]


def version_problem() -> str | None:
    """Why the stream patch must not be applied to the installed moto, if it must not."""
    import moto

    installed = getattr(moto, "__version__", "unknown")
    if installed == PATCHED_FOR:
        return None
    return (
        f"emulator: moto {installed} is installed, but the DynamoDB stream patch in "
        f"scripts/emulator_moto.py was written for moto {PATCHED_FOR}, the version "
        "requirements-dev.txt pins. Refusing to patch another version blindly: run "
        f"scripts/bootstrap.sh to install moto {PATCHED_FOR}, or check the patch against "
        f"moto {installed} and update PATCHED_FOR with the pin."
    )


def keep_streams_across_rollbacks() -> None:
    """Patches moto's DynamoDB so that a cancelled transaction leaves streams readable.

    See WHY THE STREAM PATCH. The copy moto takes shares the live shard instead of copying
    it; if the transaction is cancelled, the shard loses the records of the writes the
    rollback undid, and follows the restored table. Raises SystemExit on a moto other than
    PATCHED_FOR.
    """
    problem = version_problem()
    if problem is not None:
        raise SystemExit(problem)

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    # deepcopy(table) keeps the shard itself (and so every iterator's view of it).
    StreamShard.__deepcopy__ = lambda self, memo: self

    import copy
    import types

    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    cancel = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        before = {
            name: (table, table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if table.stream_shard is not None
        }
        # moto's backup of the tables, one copy per table however many items name it.
        # (Requests to DynamoDB are served one at a time: nothing else uses the module's
        # `copy` meanwhile.)
        copies = {}

        def deepcopy(obj, memo=None):
            if not isinstance(obj, Table):
                return copy.deepcopy(obj, memo)
            if id(obj) not in copies:
                copies[id(obj)] = copy.deepcopy(obj, memo)
            return copies[id(obj)]

        models.copy = types.SimpleNamespace(deepcopy=deepcopy)
        try:
            return cancel(self, transact_items)
        except Exception:
            for name, (table, shard, length) in before.items():
                restored = self.tables.get(name)
                if restored is not None and restored is not table:
                    del shard.items[length:]
                    shard.table = restored
                    restored.stream_shard = shard
            raise
        finally:
            models.copy = copy

    DynamoDBBackend.transact_write_items = transact_write_items
