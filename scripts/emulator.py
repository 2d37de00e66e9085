#!/usr/bin/env python3
"""Local AWS emulator for `make dev` and `make test`: moto's server, with DynamoDB serialised.

    .venv/bin/python scripts/emulator.py [--host 127.0.0.1] [--port 4566]
                                         [--ready-file PATH] [--log-file PATH] [--log-requests]
                                         [--exit-with-parent]
    .venv/bin/python scripts/emulator.py --wait [--ready-file PATH | --url URL]
                                         [--pid PID] [--timeout 30]

Serve mode runs the same WSGI app as `moto_server` (moto/server.py) on a threaded werkzeug
server, with two fixes that make moto's DynamoDB behave as DynamoDB does (scripts/emulator_moto.py:
every DynamoDB and DynamoDB Streams request handled under a single lock, and a patch that keeps
the table's stream alive after a cancelled transaction and copies a table once per transaction,
not once per item; the patch is only applied to the moto
version it was written for, the one requirements-dev.txt pins, and on any other the emulator
refuses to start), and, outside the lock, the bench counters (scripts/emulator_bench.py:
DynamoDB requests counted and timed at `/_bench/requests` and `/_bench/timings`, for
`make bench` and `make load`), and the sent emails read back (scripts/emulator_ses.py:
`GET /_ses/messages`, for `make dev`'s log and the tests).

`--port 0` binds a free port; with `--ready-file` the URL actually bound is written there
once the socket listens, which is how scripts/with-emulator.sh avoids port races.

Wait mode polls until an emulator answers a DynamoDB ListTables (URL from --url, or read from
--ready-file once it appears), prints its URL and exits 0; exits 1 after --timeout seconds
or as soon as process --pid has died.

Stops cleanly on SIGTERM and SIGINT (exit status 0). Everything is in memory: a restart is
a new, empty AWS.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

def _exit_on_signal(signum, frame):
    raise SystemExit(0)


def _watch_parent(parent_pid: int) -> None:
    """Stop the emulator when the process that started it is gone (even after SIGKILL)."""
    while True:
        time.sleep(1)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def serve(args) -> int:
    # Quiet by default: werkzeug logs every request at INFO, and the startup banner too.
    werkzeug_logger = logging.getLogger("werkzeug")
    if args.log_file:
        handler = logging.FileHandler(args.log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        werkzeug_logger.addHandler(handler)
    werkzeug_logger.setLevel(logging.INFO if args.log_requests else logging.WARNING)

    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    if args.exit_with_parent:
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    # Imported here so that --wait does not pay for importing moto. The installed moto is
    # checked first: the stream patch is only for the version it was written for.
    from emulator_moto import SerialiseDynamoDB, keep_streams_across_rollbacks, version_problem

    problem = version_problem()
    if problem is not None:
        print(problem, file=sys.stderr, flush=True)
        return 2

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from emulator_bench import CountRequests
    from emulator_ses import SentEmails

    keep_streams_across_rollbacks()
    app = SentEmails(
        CountRequests(SerialiseDynamoDB(DomainDispatcherApplication(create_backend_app)))
    )
    try:
        # What werkzeug's run_simple(threaded=True) does, minus the reloader and banner,
        # so that the bound port is known before serving.
        server = make_server(
            args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
        )
    except OSError as err:
        print(
            f"emulator: cannot listen on {args.host}:{args.port}: {err.strerror or err}"
            " (another emulator running? pick another port, or point AWS_ENDPOINT_URL"
            " at the running one)",
            file=sys.stderr,
        )
        return 2

    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    # moto uses MOTO_PORT when it calls itself (as moto_server does).
    os.environ.setdefault("MOTO_PORT", str(port))
    if args.ready_file:
        tmp = f"{args.ready_file}.tmp"
        with open(tmp, "w") as f:
            f.write(url + "\n")
        os.replace(tmp, args.ready_file)  # atomic: readers never see a partial URL
    print(f"emulator: moto listening on {url} (DynamoDB requests serialised)", file=sys.stderr, flush=True)

    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _answers(url: str) -> bool:
    # An unsigned request would be routed to S3: send a dummy SigV4 header naming DynamoDB.
    request = urllib.request.Request(
        url,
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200 and b"TableNames" in response.read()
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait(args) -> int:
    deadline = time.monotonic() + args.timeout
    url = args.url
    delay = 0.02
    while True:
        if args.pid and not _pid_alive(args.pid):
            print(f"emulator: process {args.pid} exited before it was ready", file=sys.stderr)
            return 1
        if url is None and args.ready_file and os.path.exists(args.ready_file):
            with open(args.ready_file) as f:
                url = f.read().strip() or None
        if url is not None and _answers(url):
            print(url)
            return 0
        if time.monotonic() >= deadline:
            print(f"emulator: not ready after {args.timeout:g} s", file=sys.stderr)
            return 1
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("MOTO_PORT", "4566")),
        help="port to bind, 0 for any free one (default $MOTO_PORT or 4566)",
    )
    parser.add_argument("--ready-file", help="write the bound URL here once listening (serve); read it (--wait)")
    parser.add_argument("--log-file", help="append werkzeug logs (errors; requests with --log-requests) here")
    parser.add_argument("--log-requests", action="store_true", help="log every request")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process dies")
    parser.add_argument("--wait", action="store_true", help="wait for an emulator to answer, print its URL")
    parser.add_argument("--url", help="(--wait) the emulator's URL")
    parser.add_argument("--pid", type=int, help="(--wait) give up as soon as this process has died")
    parser.add_argument("--timeout", type=float, default=30.0, help="(--wait) seconds, default 30")
    args = parser.parse_args(argv)

    if args.wait:
        if not (args.url or args.ready_file):
            parser.error("--wait needs --url or --ready-file")
        return wait(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
