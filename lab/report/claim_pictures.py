"""The pictures a scenario's section shows for the claims it makes: each entry names a
claim and the function that draws what that claim reads (a frame's bytes, the addresses a
server answered on ...). A scenario making none of them gets none; a picture with nothing
to draw is "". New pictures are new entries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from lab.evidence.folder import Evidence
from lab.report.anatomy_html import anatomy_picture, byte_order_picture
from lab.report.binding_html import bind_picture, ephemeral_picture
from lab.spec.codec import RecordError
from lab.spec.model import Scenario, Topology

PictureFn = Callable[[Evidence, Topology, Scenario], str]

CLAIM_PICTURES: Mapping[str, PictureFn] = {
    "frame-anatomy": anatomy_picture,
    "byte-order": byte_order_picture,
    "bind-address": bind_picture,
    "ephemeral-ports": ephemeral_picture,
}


def claim_pictures(out_dir: Path, topology: Topology, scenario: str) -> str:
    """The pictures of the claims ``scenario`` makes, in the order it lists them; "" when
    it makes none of them or the folder has no run.json this version reads."""
    sc = next((s for s in topology.scenarios if s.name == scenario), None)
    drawn = [CLAIM_PICTURES[c] for c in sc.claims if c in CLAIM_PICTURES] if sc else []
    if sc is None or not drawn:
        return ""
    try:
        ev = Evidence.load(out_dir)
    except RecordError:
        return ""
    return "".join(draw(ev, topology, sc) for draw in drawn)
