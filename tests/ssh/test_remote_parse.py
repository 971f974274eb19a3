"""What the ssh backend reads from a host's pre-flight output and /proc, from texts as the
tools print them (no host needed)."""

from __future__ import annotations

from lab.run.backends.ssh.prepare import port_problems
from lab.run.backends.ssh.remote import alive_in_stat, parse_ip_addr, parse_preflight, parse_route

# `ip -o -4 addr show` on a host with a secondary address (an alias label) and a veth.
IP_ADDR = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 10.77.50.10/24 brd 10.77.50.255 scope global eth0\\       valid_lft forever
2: eth0    inet 10.77.50.99/24 scope global secondary eth0:1\\       valid_lft forever
2: eth0    inet 10.77.60.5/24 scope global eth0\\       valid_lft forever preferred_lft forever
7: veth1@if6    inet 10.251.0.2/30 scope global veth1\\       valid_lft forever
"""

ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t0032A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t0132A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
"""


def test_secondary_addresses_name_their_interface() -> None:
    found = parse_ip_addr(IP_ADDR.splitlines())
    assert found == {
        "127.0.0.1": "lo",
        "10.77.50.10": "eth0",
        "10.77.50.99": "eth0",  # secondary, labelled eth0:1: captured on eth0
        "10.77.60.5": "eth0",
        "10.251.0.2": "veth1",
    }


def test_default_gateway_from_proc_net_route() -> None:
    assert parse_route(ROUTE.splitlines()) == "192.168.50.1"
    assert parse_route(ROUTE.splitlines()[:2]) is None


def test_preflight_output_parsed() -> None:
    text = (
        "access sudo\nmissing tcpdump\nmissing netstat\n"
        "python 3.11 /usr/bin/python3\n"
        + "".join(f"addr {line}\n" for line in IP_ADDR.splitlines())
        + "".join(f"route {line}\n" for line in ROUTE.splitlines())
    )
    found = parse_preflight(text)
    assert found.access == "sudo"
    assert found.missing == ["tcpdump", "netstat"]
    assert (found.version, found.executable) == ("3.11", "/usr/bin/python3")
    assert found.addresses["10.77.50.99"] == "eth0"
    assert found.gateway == "192.168.50.1"


def test_preflight_without_python_or_access() -> None:
    found = parse_preflight("access none\npython none\n")
    assert (found.access, found.version, found.executable) == ("none", None, None)
    assert found.addresses == {} and found.gateway is None


def test_a_process_is_alive_only_with_its_own_start_time() -> None:
    stat = b"4242 (python3 -c x) S 1 4242 4242 0 -1 4194560 " + b"0 " * 12 + b"987654 0 0\n"
    assert alive_in_stat(stat, "987654")
    assert not alive_in_stat(stat, "987655")  # the PID was recycled
    assert not alive_in_stat(stat.replace(b") S ", b") Z "), "987654")  # a zombie has ended
    assert not alive_in_stat(None, "987654")


def test_a_service_port_taken_on_the_host_is_a_preflight_problem() -> None:
    found = parse_preflight(
        "listen tcp   LISTEN 0      128          0.0.0.0:9999      0.0.0.0:*\n"
        "listen udp   UNCONN 0      0               [::]:8080         [::]:*\n"
        "listen tcp   LISTEN 0      128    [::ffff:10.0.0.1]:22       [::]:*\n"
        "listen a line ss never prints\n"
    )
    assert found.listening == {("tcp", 9999), ("udp", 8080), ("tcp", 22)}
    problems = port_problems(found, [("tcp", 9999), ("tcp", 8080), ("udp", 9999)])
    assert problems == [
        "tcp port 9999 is already in use on this host (another lab running there, or a "
        "program of its own): stop it, or choose another port"
    ]  # udp 8080 is not tcp 8080, nor tcp 9999 udp 9999
