"""moto's server as the tests run it: each DynamoDB request is handled whole before the next.

DynamoDB applies every request atomically: two concurrent `ADD count 1` both count, and of
two conditional writes racing for one item exactly one wins. moto's threaded server runs
its read-modify-write of an item on several threads at once and can lose an update (seen
as 61 for 62 in `conformance_aws::update_sets_removes_and_adds`), so here its DynamoDB
requests take one lock. Everything else stays concurrent: an SQS long poll must not hold
up other requests. moto is one Python process, so the lock costs little throughput.

S3 Vectors: moto 5.2.5 routes the Rust SDK's requests by their SigV4 service name
(`s3vectors`), so nothing is needed for routing. Three gaps of its backend against S3
Vectors' documented behaviour are closed below, so that the AWS adapter's conformance run
on moto checks S3 Vectors' semantics and the adapter's wire mapping of them:
- CreateIndex of an existing name replaced the index (vectors lost); S3 Vectors answers
  ConflictException;
- CreateIndex dropped `metadataConfiguration`, so GetIndex never returned the
  non-filterable keys;
- ListVectors ignored `maxResults`/`nextToken` and returned every vector in one page.
QueryVectors stays unimplemented (moto has none); the tests use this crate's fake for it.

    python tests/moto_server.py -H 127.0.0.1 -p 5055   (moto_server's arguments)
"""

import threading

import moto.server
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3vectors.exceptions import IndexNotFound, ValidationError
from moto.s3vectors.responses import S3VectorsResponse

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _call(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb:
            # The whole response, so the request is done before the lock is released.
            return list(_dispatch(self, environ, start_response))
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _call


class _IndexExists(ServiceException):
    code = "ConflictException"

    def __init__(self) -> None:
        super().__init__("An index with the specified name already exists")


_create_index = S3VectorsResponse.create_index


def _create_index_once(self):
    bucket = self._get_param("vectorBucketName")
    name = self._get_param("indexName")
    if bucket and name:
        try:
            self.s3vectors_backend.get_index(bucket, name, None)
        except IndexNotFound:
            pass
        else:
            raise _IndexExists()
    result = _create_index(self)
    config = self._get_param("metadataConfiguration")
    if config and bucket and name:
        index = self.s3vectors_backend.get_index(bucket, name, None)
        # Serialised as the Index shape's `metadataConfiguration`.
        index.metadata_configuration = config
    return result


S3VectorsResponse.create_index = _create_index_once


def _list_vectors_paged(self):
    bucket = self._get_param("vectorBucketName")
    index_arn = self._get_param("indexArn")
    name = self._get_param("indexName")
    self._validate_index_params(index_arn, name, bucket)
    limit = self._get_param("maxResults") or 500
    if not 1 <= limit <= 1000:
        raise ValidationError(
            "1 validation error detected. Value at '/maxResults' failed to satisfy constraint: Member must be between 1 and 1000, inclusive"
        )
    token = self._get_param("nextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise ValidationError("Invalid nextToken")
    return_data = self._get_bool_param("returnData", False)
    return_metadata = self._get_bool_param("returnMetadata", False)
    vectors = list(
        self.s3vectors_backend.list_vectors(
            vector_bucket_name=bucket, index_arn=index_arn, index_name=name
        )
    )
    page = vectors[start : start + limit]
    result = {
        "vectors": [
            {
                "key": v.key,
                "data": v.data if return_data else None,
                "metadata": v.metadata if return_metadata else None,
            }
            for v in page
        ]
    }
    if start + limit < len(vectors):
        # An offset into the index's vectors in insertion order: enough for a test
        # server (a put between pages may shift it; S3 Vectors' token is opaque).
        result["nextToken"] = str(start + limit)
    return ActionResult(result)


S3VectorsResponse.list_vectors = _list_vectors_paged

if __name__ == "__main__":
    moto.server.main()
