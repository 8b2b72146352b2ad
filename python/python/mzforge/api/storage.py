"""Object storage for uploads and results: a local folder (embedded mode) or the two S3 buckets
(AWS mode). Keys are ``/``-separated; uploads and results live in separate namespaces
(``uploads`` and ``results``), which are two buckets on S3 and two folders locally."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

Area = Literal["uploads", "results"]


class StorageError(Exception):
    pass


class Storage:
    kind: str

    def url(self, area: Area, key: str) -> str:
        raise NotImplementedError

    def put_file(self, area: Area, key: str, path: Path) -> None:
        raise NotImplementedError

    def put_bytes(self, area: Area, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get_bytes(self, area: Area, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        raise NotImplementedError

    def exists(self, area: Area, key: str) -> bool:
        raise NotImplementedError

    @contextlib.contextmanager
    def local_copy(self, area: Area, key: str) -> Iterator[Path]:
        """A local file with the object's content for the duration of the block."""
        raise NotImplementedError
        yield  # pragma: no cover

    def open_read(self, area: Area, key: str) -> IO[bytes]:
        raise NotImplementedError

    def delete(self, area: Area, key: str) -> None:
        raise NotImplementedError

    def delete_prefix(self, area: Area, prefix: str) -> None:
        raise NotImplementedError

    def list_objects(self, area: Area, prefix: str) -> Iterator[tuple[str, float]]:
        """Every object whose key starts with ``prefix``, as (key, last modified in seconds since
        the epoch), in no particular order."""
        raise NotImplementedError

    def check(self) -> None:
        """Raises when the storage cannot be reached."""
        raise NotImplementedError


def _safe_key(key: str) -> str:
    parts = key.rstrip("/").split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class LocalStorage(Storage):
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        for area in ("uploads", "results"):
            (root / area).mkdir(parents=True, exist_ok=True)

    def path(self, area: Area, key: str) -> Path:
        return self.root / area / _safe_key(key)

    def url(self, area: Area, key: str) -> str:
        return str(self.path(area, key))

    def put_file(self, area: Area, key: str, path: Path) -> None:
        target = self.path(area, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        try:
            os.replace(path, partial)
        except OSError:  # another file system
            shutil.copyfile(path, partial)
        os.replace(partial, target)

    def put_bytes(self, area: Area, key: str, data: bytes) -> None:
        target = self.path(area, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, target)

    def get_bytes(self, area: Area, key: str) -> bytes | None:
        try:
            return self.path(area, key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, area: Area, key: str) -> bool:
        return self.path(area, key).is_file()

    @contextlib.contextmanager
    def local_copy(self, area: Area, key: str) -> Iterator[Path]:
        path = self.path(area, key)
        if not path.is_file():
            raise FileNotFoundError(f"{area}/{key} does not exist")
        yield path

    def open_read(self, area: Area, key: str) -> IO[bytes]:
        return open(self.path(area, key), "rb")

    def delete(self, area: Area, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(area, key).unlink()

    def delete_prefix(self, area: Area, prefix: str) -> None:
        shutil.rmtree(self.path(area, prefix.rstrip("/")), ignore_errors=True)

    def list_objects(self, area: Area, prefix: str) -> Iterator[tuple[str, float]]:
        # Keys are listed by folder: a prefix names a folder here (``uploads/``), as the layout's do.
        base = self.root / area
        for folder, _, files in os.walk(base / prefix if prefix else base):
            for name in files:
                path = Path(folder, name)
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                    yield path.relative_to(base).as_posix(), path.stat().st_mtime

    def check(self) -> None:
        for area in ("uploads", "results"):
            d = self.root / area
            if not (d.is_dir() and os.access(d, os.W_OK)):
                raise StorageError(f"{d} is not a writable folder")


class S3Storage(Storage):
    kind = "s3"

    def __init__(self, uploads_bucket: str, results_bucket: str) -> None:
        import boto3
        from botocore.config import Config

        # AWS_ENDPOINT_URL (moto, MinIO) is read by boto3 itself.
        self.client = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))
        self.buckets = {"uploads": uploads_bucket, "results": results_bucket}

    def url(self, area: Area, key: str) -> str:
        return f"s3://{self.buckets[area]}/{key}"

    def put_file(self, area: Area, key: str, path: Path) -> None:
        # upload_file switches to a multipart upload for large files.
        self.client.upload_file(str(path), self.buckets[area], _safe_key(key))

    def put_bytes(self, area: Area, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.buckets[area], Key=_safe_key(key), Body=data)

    def get_bytes(self, area: Area, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.buckets[area], Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def exists(self, area: Area, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.buckets[area], Key=key)
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    @contextlib.contextmanager
    def local_copy(self, area: Area, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="mzforge-api-") as tmp:
            path = Path(tmp) / key.rsplit("/", 1)[-1]
            self.client.download_file(self.buckets[area], key, str(path))
            yield path

    def open_read(self, area: Area, key: str) -> IO[bytes]:
        return self.client.get_object(Bucket=self.buckets[area], Key=key)["Body"]

    def delete(self, area: Area, key: str) -> None:
        self.client.delete_object(Bucket=self.buckets[area], Key=key)

    def delete_prefix(self, area: Area, prefix: str) -> None:
        bucket = self.buckets[area]
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

    def list_objects(self, area: Area, prefix: str) -> Iterator[tuple[str, float]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.buckets[area], Prefix=prefix):
            for o in page.get("Contents", []):
                yield o["Key"], o["LastModified"].timestamp()

    def check(self) -> None:
        for bucket in self.buckets.values():
            self.client.head_bucket(Bucket=bucket)


def make_storage(settings) -> Storage:  # noqa: ANN001 - Settings, avoiding an import cycle
    if settings.storage_kind == "s3":
        return S3Storage(settings.uploads_bucket, settings.results_bucket)
    return LocalStorage(settings.data_dir / "storage")
