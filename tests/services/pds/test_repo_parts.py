"""The PDS's repository building blocks lean on plaza.atproto, never beside it."""

from __future__ import annotations

import ast
from pathlib import Path

import plaza.services.pds

PDS = Path(plaza.services.pds.__file__).parent


def test_cids_have_one_text_form_the_atproto_layers() -> None:
    """CID text comes from ``str(cid)`` (plaza.atproto, itself on libipld): the PDS
    keeps no second encoder of its own to drift from it, so no PDS module imports the
    codec library directly."""
    offenders = []
    for path in sorted(PDS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "libipld" or n.startswith("libipld.") for n in names):
                offenders.append(str(path.relative_to(PDS)))
    assert offenders == []
