"""The OpenAI error envelope, for every error the API returns."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.api.responses import ErrorDetail, ErrorResponse


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> ErrorResponse:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> ErrorResponse:
    return ErrorResponse(error=ErrorDetail(message=message, type=type_, param=param, code=code))


def error_response(body: ErrorResponse, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


async def unexpected_error_handler(_: Request, exc: Exception) -> JSONResponse:
    """The last net: a failure nobody foresaw still answers in the envelope (the traceback goes
    to the log, not to the client)."""
    return error_response(
        error_body(f"internal error ({type(exc).__name__})", "server_error", None, "internal_error"), 500
    )


async def api_error_handler(_: Request, exc: APIError) -> JSONResponse:
    return error_response(exc.body(), exc.status)


async def validation_error_handler(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return error_response(
            error_body("the body is not valid JSON", "invalid_request_error", None, "invalid_json"), 400
        )
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    message = f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid request')}"
    return error_response(error_body(message, "invalid_request_error", ".".join(loc) or None, "invalid_value"), 400)


async def http_error_handler(_: Request, exc: HTTPException) -> JSONResponse:
    type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return error_response(error_body(str(exc.detail), type_), exc.status_code, exc.headers)
