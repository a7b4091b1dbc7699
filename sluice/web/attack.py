"""ATT&CK technique names for the ids heuristics carry, from the table bundled beside this module
(`attack.yml`): the page names every id it shows, and nothing is fetched at run time."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from litestar import get

from sluice.web.auth import VIEWER

TABLE = Path(__file__).with_name("attack.yml")


@functools.cache
def techniques() -> dict[str, str]:
    return {str(k): str(v) for k, v in yaml.safe_load(TABLE.read_text()).items()}


@get("/attack", guards=[VIEWER], summary="ATT&CK technique names by id (the bundled table)")
async def attack_table() -> dict[str, str]:
    return techniques()


ROUTES = [attack_table]
