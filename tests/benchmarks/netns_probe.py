"""What ``test_own_netns`` runs through ``rerun_in_own_netns``: makes one connection over
its loopback, prints the network interfaces it sees, then exits with the status asked."""

from __future__ import annotations

import json
import socket
import sys

from tests.benchmarks.own_netns import rerun_in_own_netns, where


def main() -> None:
    rerun_in_own_netns("tests.benchmarks.netns_probe")
    # The loopback must carry a connection: it is what the benchmarks measure on.
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.create_connection(listener.getsockname(), timeout=5),
    ):
        pass
    doc = {"interfaces": sorted(name for _, name in socket.if_nameindex()), "where": where()}
    print(json.dumps(doc), flush=True)
    sys.exit(int(sys.argv[1]))


if __name__ == "__main__":
    main()
