"""Receiving a multipart upload as a stream: the `file` part goes straight to a file on disk as it
arrives (never whole in memory), the size limit is enforced while reading, and the small form
fields (e.g. `mode`) are kept."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from mailstify_servicekit import InvalidInput, ServiceError

FILE_FIELD = "file"
MAX_FIELD_BYTES = 1024


class UploadTooLarge(ServiceError):
    status_code = 413


@dataclass
class SpooledUpload:
    path: Path
    file_name: str
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)


class _Receiver:
    """python-multipart's callbacks: route each part's bytes to the file or a field."""

    def __init__(self, directory: Path, max_bytes: int):
        self.directory = directory
        self.max_bytes = max_bytes
        self.upload: SpooledUpload | None = None
        self.fields: dict[str, str] = {}
        self._file: IO[bytes] | None = None
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._field: str | None = None
        self._field_value = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._add_header_name(data[start:end]),
            "on_header_value": lambda data, start, end: self._add_header_value(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers, self._field, self._field_value = {}, None, bytearray()

    def _add_header_name(self, data: bytes) -> None:
        self._header_name += data

    def _add_header_value(self, data: bytes) -> None:
        self._header_value += data

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == FILE_FIELD and self.upload is None:
            handle = tempfile.NamedTemporaryFile(dir=self.directory, prefix="import-", suffix=".csv", delete=False)
            self._file = handle
            file_name = options.get(b"filename", b"").decode("utf-8", "replace")
            self.upload = SpooledUpload(Path(handle.name), file_name)
        else:
            self._field = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None and self.upload is not None:
            self.upload.size += end - start
            if self.upload.size > self.max_bytes:
                raise UploadTooLarge(
                    f"the file is larger than the limit of {self.max_bytes // (1024 * 1024)} MB; split it into smaller files"
                )
            self._file.write(data[start:end])
        elif self._field is not None:
            self._field_value += data[start:end]
            if len(self._field_value) > MAX_FIELD_BYTES:
                raise InvalidInput(f"the form field '{self._field}' is too long")

    def _part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._field is not None:
            self.fields[self._field] = self._field_value.decode("utf-8", "replace")
            self._field = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self.upload is not None:
            self.upload.path.unlink(missing_ok=True)


async def spool_upload(request: Request, directory: Path, max_bytes: int) -> SpooledUpload:
    """The request's `file` part on disk (the caller deletes it); 4xx for anything else."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidInput(f"send the CSV as multipart/form-data with a '{FILE_FIELD}' field")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise UploadTooLarge(f"the file is larger than the limit of {max_bytes // (1024 * 1024)} MB; split it into smaller files")
    directory.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(directory, max_bytes)
    parser = MultipartParser(boundary, receiver.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except ClientDisconnect:
        receiver.discard()
        raise InvalidInput("the upload was interrupted before the whole file arrived") from None
    except ServiceError:
        receiver.discard()
        raise
    except Exception as error:  # python-multipart's parse errors: a malformed body is the client's
        receiver.discard()
        raise InvalidInput(f"the multipart body could not be read: {error}") from None
    if receiver.upload is None:
        raise InvalidInput(f"the request has no '{FILE_FIELD}' field with the CSV file")
    receiver.upload.fields = receiver.fields
    return receiver.upload


@contextlib.contextmanager
def deleted_on_error(upload: SpooledUpload):
    """The spooled file goes away if accepting the import fails; otherwise the job owns it."""
    try:
        yield upload
    except BaseException:
        upload.path.unlink(missing_ok=True)
        raise
