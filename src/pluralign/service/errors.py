"""Errors as JSON: ``{"error": {"code", "message", "field"}}`` with a 4xx status; never a stack trace to a client.

A body that is not JSON at all gets 400 ``invalid_json`` with what the parser found and where (line and column, or
byte offset), never dressed up as a field; a body that is JSON but not what the endpoint takes gets 422
``invalid_request`` naming the field. Error bodies are ASCII-escaped JSON, so a field name echoed from a hostile
request (a lone surrogate, a control character) can never make the error itself fail to encode.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by endpoints; becomes ``status`` with a JSON error body."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers


class ErrorResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: encodable whatever a client sent."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def error_body(code: str, message: str, field: str | None = None, **extra) -> dict:
    err = {"code": code, "message": message}
    if field is not None:
        err["field"] = field
    err.update(extra)
    return {"error": err}


def _field(loc: tuple) -> str:
    # FastAPI prefixes the location with "body"/"path"/"query"; keep it, it tells a client where to look.
    return ".".join(str(p) for p in loc)


def _line_col(text: str | bytes, pos: int) -> str:
    nl = "\n" if isinstance(text, str) else b"\n"
    line = text.count(nl, 0, pos) + 1
    return f"line {line} column {pos - (text.rfind(nl, 0, pos) + 1) + 1}"


def json_decode_message(error: str, doc: Any, pos: int) -> str:
    where = _line_col(doc, pos) if isinstance(doc, str | bytes) else f"character {pos}"
    return f"the request body is not valid JSON: {error} at {where}"


def body_parse_message(cause: BaseException | None) -> str:
    """What went wrong when the JSON parser raised something other than a decode error."""
    if isinstance(cause, UnicodeDecodeError):
        bad = cause.object[cause.start:cause.start + 1].hex() if isinstance(cause.object, bytes) else "?"
        return (f"the request body is not valid UTF-8: byte 0x{bad} at {_line_col(cause.object, cause.start)} "
                f"(byte offset {cause.start})")
    if isinstance(cause, RecursionError):
        return "the request body is not acceptable JSON: arrays or objects are nested too deeply"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return ("the request body is not acceptable JSON: a number has too many digits (at most 4300; send long "
                "numbers as strings)")
    return f"the request body could not be parsed as JSON ({type(cause).__name__})" if cause else (
        "the request body could not be parsed as JSON")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return ErrorResponse(error_body(exc.code, exc.message, exc.field), status_code=exc.status,
                             headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            loc = tuple(bad_json.get("loc", ()))
            pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
            msg = json_decode_message((bad_json.get("ctx") or {}).get("error", "decode error"), exc.body, pos)
            return ErrorResponse(error_body("invalid_json", msg), status_code=400)
        issues = []
        for e in errors:
            msg = e.get("msg", "invalid value")
            if e.get("type") == "extra_forbidden":
                msg = "unknown field"
            elif e.get("type") == "missing":
                msg = "required field is missing"
            elif e.get("type") == "string_unicode":
                msg = "text holds a lone UTF-16 surrogate, which is not valid Unicode"
            issues.append({"field": _field(tuple(e.get("loc", ()))), "message": msg})
        first = issues[0] if issues else {"field": "body", "message": "invalid request"}
        return ErrorResponse(
            error_body("invalid_request", f"{first['field']}: {first['message']}", first["field"], issues=issues),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":  # FastAPI's body parser
            code, message = "invalid_json", body_parse_message(exc.__cause__)
        elif exc.status_code == 404 and len(req.url.path) > 1 and req.url.path.endswith("/"):
            message = "Not Found (paths take no trailing slash)"
        return ErrorResponse(error_body(code, message), status_code=exc.status_code,
                             headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", req.method, req.url.path)
        return ErrorResponse(error_body("internal_error", "internal server error (details are in the server log)"),
                            status_code=500)


class BodySizeLimit:
    """Pure ASGI middleware: bodies over ``max_bytes`` get 413, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        # No (or a small) Content-Length: read the body up to the limit here, then replay it to the app.
        chunks, seen = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        resp = ErrorResponse(error_body("payload_too_large", f"request body is larger than {self.max_bytes} bytes"),
                            status_code=413)
        await resp({"type": "http"}, None, send)  # type: ignore[arg-type]


class CatchAll:
    """Pure ASGI middleware: an unexpected exception becomes a JSON 500 and is logged here, not re-raised.

    Starlette's own last-resort handler re-raises after answering, which makes uvicorn drop the keep-alive
    connection, so a client's next request on it fails with a reset; this keeps the connection usable.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            resp = ErrorResponse(error_body("internal_error", "internal server error (details are in the server log)"),
                                status_code=500)
            await resp(scope, receive, send)
