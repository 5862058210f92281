"""Search the local index directly: the passages an answer would read, with their scores."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Query

from service.api.access import search_scope
from service.api.deps import PrincipalDep, RuntimeDep
from service.api.errors import APIError
from service.api.responses import ERRORS, SearchHit, SearchResults

router = APIRouter(tags=["documents"])


@router.get("/v1/search", response_model=SearchResults, responses=ERRORS)
async def search(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    q: str = Query(min_length=1, max_length=2000),
    k: int = Query(5, ge=1, le=50),
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid",
    collection: list[str] | None = Query(None, description="Search only these (default: every readable one)."),
) -> SearchResults:
    if not q.strip():
        raise APIError(400, "q is blank", param="q")
    scope = search_scope(principal, collection)
    found = await asyncio.to_thread(runtime.index.search, q, k, mode, scope)
    return SearchResults(query=q, data=[SearchHit.of(p) for p in found])
