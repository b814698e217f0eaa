"""moto's server as the tests run it: each DynamoDB request is handled whole before the next.

DynamoDB applies every request atomically: two concurrent `ADD count 1` both count, and of
two conditional writes racing for one item exactly one wins. moto's threaded server runs
its read-modify-write of an item on several threads at once and can lose an update (seen
as 61 for 62 in `conformance_aws::update_sets_removes_and_adds`), so here its DynamoDB
requests take one lock. Everything else stays concurrent: an SQS long poll must not hold
up other requests. moto is one Python process, so the lock costs little throughput.

    python tests/moto_server.py -H 127.0.0.1 -p 5055   (moto_server's arguments)
"""

import threading

import moto.server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _call(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb:
            # The whole response, so the request is done before the lock is released.
            return list(_dispatch(self, environ, start_response))
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _call

if __name__ == "__main__":
    moto.server.main()
