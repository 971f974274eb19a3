"""The pictures a scenario's section shows for the claims it makes: each entry names a
claim and the function that draws what that claim reads (a frame's bytes, the addresses a
server answered on ...). A scenario making none of them gets none; a picture with nothing
to draw is "". New pictures are new entries."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lab.evidence.folder import Evidence
from lab.report.anatomy_html import anatomy_picture, byte_order_picture
from lab.report.binding_html import bind_picture, ephemeral_picture
from lab.report.pictures import demux_picture, reads_picture, segments_picture, time_wait_picture
from lab.spec.model import Scenario, Topology

PictureFn = Callable[[Evidence, Topology, Scenario], str]

CLAIM_PICTURES: Mapping[str, PictureFn] = {
    "frame-anatomy": anatomy_picture,
    "byte-order": byte_order_picture,
    "bind-address": bind_picture,
    "ephemeral-ports": ephemeral_picture,
    "segments-within-mss": segments_picture,
    "connection-per-child": demux_picture,
    "time-wait-2msl": time_wait_picture,
    "read-eintr": reads_picture,
}


def claim_pictures(ev: Evidence | None, topology: Topology, sc: Scenario | None) -> str:
    """The pictures of the claims ``sc`` makes, in the order it lists them; "" when it
    makes none of them or there is no evidence this version reads."""
    if ev is None or sc is None:
        return ""
    return "".join(CLAIM_PICTURES[c](ev, topology, sc) for c in sc.claims if c in CLAIM_PICTURES)
