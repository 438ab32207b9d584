"""The shared object store (headrace.ports.ObjectStore and ListingStore) on S3."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from headrace.aws.errors import is_missing_object
from headrace.ports import ObjectSummary


class S3Store:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def read(self, bucket: str, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if is_missing_object(exc):
                return False
            raise
        return True

    def list(self, bucket: str, prefix: str) -> list[ObjectSummary]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [
            ObjectSummary(key=o["Key"], size=int(o["Size"]), last_modified=o["LastModified"])
            for page in pages
            for o in page.get("Contents", [])
        ]
