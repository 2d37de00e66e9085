#!/usr/bin/env python3
"""localstripe (the stateful Stripe stand-in, pinned in requirements-dev.txt) for `make dev`
and `make test`.

Usage:
  stripe_standin.py --port 0 --ready-file FILE [--exit-with-parent]
      serve on 127.0.0.1 (port 0: a free one), write the base URL to FILE once listening
  stripe_standin.py --wait --ready-file FILE --pid PID [--timeout 30]
      print the URL once FILE exists and the server answers

Two changes to localstripe as it ships, both for running several at once on one
machine: it binds 127.0.0.1 (not every interface) on the port asked, and it keeps its
objects in memory only, instead of pickling the whole store into /tmp/localstripe.pickle
on every write (a file every instance would share).
"""

import argparse
import os
import socket
import sys
import threading
import time
import urllib.request


def serve(args):
    import localstripe.resources as resources
    from aiohttp import web
    from localstripe.server import app

    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    url = "http://127.0.0.1:%d" % sock.getsockname()[1]

    if args.exit_with_parent:
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()

    async def ready(_app):
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(url)
        os.replace(tmp, args.ready_file)

    app.on_startup.append(ready)
    web.run_app(app, sock=sock, print=None, access_log=None)


def wait(args):
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            os.kill(args.pid, 0)
        except OSError:
            sys.exit("localstripe exited before it was ready")
        if os.path.exists(args.ready_file):
            with open(args.ready_file) as f:
                url = f.read().strip()
            request = urllib.request.Request(
                url + "/v1/customers", headers={"Authorization": "Bearer sk_test_ready"}
            )
            try:
                with urllib.request.urlopen(request, timeout=1) as response:
                    if response.status == 200:
                        print(url)
                        return
            except OSError:
                pass
        time.sleep(0.1)
    sys.exit("localstripe did not answer within %ss" % args.timeout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--exit-with-parent", action="store_true")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--pid", type=int)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    if args.wait:
        wait(args)
    else:
        serve(args)


if __name__ == "__main__":
    main()
