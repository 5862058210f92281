"""Who is calling, and which collections they may read and write.

A request's `Principal` comes from its API key (auth.py): the admin key may do everything, each
other key what its grant says, and a service without keys lets every caller do everything. A
collection a caller may not read is answered as if it did not exist (404): a key never learns
what another key's collections hold, not even their names.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from service.api.errors import APIError

EVERY = "*"


@dataclass(frozen=True)
class Principal:
    name: str
    read: frozenset[str]  # "*" in it: every collection
    write: frozenset[str]

    @property
    def reads_all(self) -> bool:
        return EVERY in self.read or EVERY in self.write

    @property
    def admin(self) -> bool:
        return EVERY in self.read and EVERY in self.write

    def may_read(self, collection: str) -> bool:
        """Reading is granted by name, and comes with writing: a key sees what it may change."""
        return EVERY in self.read or collection in self.read or self.may_write(collection)

    def may_write(self, collection: str) -> bool:
        return EVERY in self.write or collection in self.write


ANYONE = Principal("anyone", frozenset({EVERY}), frozenset({EVERY}))
ADMIN = Principal("admin", frozenset({EVERY}), frozenset({EVERY}))


def principal_of(request: Request) -> Principal:
    """Set by the key middleware; a service without keys lets anyone do anything."""
    return getattr(request.state, "principal", ANYONE)


def not_found(collection: str) -> APIError:
    return APIError(404, f"no collection {collection!r}", "not_found_error", param="collection", code="no_collection")


def require_read(principal: Principal, collection: str) -> str:
    if not principal.may_read(collection):
        raise not_found(collection)
    return collection


def require_write(principal: Principal, collection: str) -> str:
    """The collection, if this key may write to it: 404 when it may not even read it, else 403."""
    require_read(principal, collection)
    if not principal.may_write(collection):
        message = f"this key may read collection {collection!r} but not change it"
        raise APIError(403, message, "permission_error", param="collection", code="read_only_collection")
    return collection


def search_scope(principal: Principal, asked: list[str] | None) -> list[str] | None:
    """The collections a search may see: those asked for (each readable, else 404), or every
    one it may read (None: the whole index)."""
    if asked:
        return sorted({require_read(principal, c) for c in asked})
    if principal.reads_all:
        return None
    return sorted(principal.read | principal.write)
