"""``app.bsky.actor.*``: profiles."""

from __future__ import annotations

from typing import Any

from plaza.errors import InvalidInputError
from plaza.services.appview.xrpc import Call, Method, query

MAX_PROFILES = 25


async def get_profile(call: Call) -> Any:
    actor = call.req_param("actor")
    views = call.av.views(call.viewer)
    ident = views.reader.resolve(actor)
    profile = None if ident is None else views.profiles([ident], "detailed").get(ident)
    if profile is None:
        raise InvalidInputError("Profile not found")
    return profile


async def get_profiles(call: Call) -> Any:
    actors = call.params("actors")
    if not actors:
        raise InvalidInputError('Error: Params must have the property "actors"')
    if len(actors) > MAX_PROFILES:
        raise InvalidInputError(f"actors must hold at most {MAX_PROFILES} items")
    views = call.av.views(call.viewer)
    ids = [i for i in (views.reader.resolve(a) for a in actors) if i is not None]
    found = views.profiles(ids, "detailed")
    return {"profiles": [found[i] for i in ids if i in found]}


METHODS: list[Method] = [
    query("app.bsky.actor.getProfile", get_profile),
    query("app.bsky.actor.getProfiles", get_profiles),
]
