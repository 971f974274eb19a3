"""The node image on every engine that runs a node: present already (its tag carries the
hash of its inputs, so a current image is never sent again), or sent from the machine's
own engine, where `lab images build` builds it, with save and load (no registry needed)."""

from __future__ import annotations

from collections.abc import Iterable

import docker
import docker.errors

from lab.errors import BackendError
from lab.run.backends.docker.engine import ENGINE_ERRORS, connect, engine
from lab.run.backends.swarm.cluster import Engine

CHUNK = 1 << 20


def has_image(api: docker.APIClient, image: str) -> bool:
    try:
        api.inspect_image(image)  # type: ignore[no-untyped-call]
    except docker.errors.ImageNotFound:
        return False
    except ENGINE_ERRORS as exc:
        raise BackendError(f"docker: looking for {image}: {exc}") from exc
    return True


def ensure_image(engines: Iterable[Engine], image: str) -> list[str]:
    """Load ``image`` where it is missing; the names of the engines it was sent to."""
    missing = [e for e in engines if not has_image(e.api, image)]
    if not missing:
        return []
    local = connect()
    try:
        if not has_image(local.api, image):
            raise BackendError(
                f"{image} is on neither {', '.join(e.name for e in missing)} nor this "
                "machine's engine: run `lab images build` here"
            )
        for target in missing:
            with engine(f"sending {image} to {target.where()}"):
                stream = local.api.get_image(image, chunk_size=CHUNK)
                target.api.load_image(stream)  # type: ignore[no-untyped-call]
            if not has_image(target.api, image):
                raise BackendError(f"{target.where()}: {image} not there after loading it")
    finally:
        local.close()
    return [e.name for e in missing]
