"""Reading ``scenarios``: who talks to which service, what is sent and must come back,
the claims to judge, and the error experiments' probes and restarts. Keys and plain values
are checked against ``lab.spec.keys.SCENARIO`` and ``RESTART``."""

from __future__ import annotations

from yaml.nodes import MappingNode, Node, ScalarNode

from lab.spec.claims import CLAIM_SPECS as CLAIMS
from lab.spec.drafts import Doc, ScenarioDraft
from lab.spec.keys import (
    BUG,
    BUILTIN_CHECKS,
    MAX_ITEM_BYTES,
    MAX_RESTARTS,
    NOT_WITH_CLIENT_PROGRAM,
    NOT_WITH_PROBE,
    RESTART,
    SCENARIO,
    SCENARIO_KNOBS,
    TCP_ONLY_KEYS,
    Key,
)  # fmt: skip
from lab.spec.model import Bug, Restart
from lab.spec.netem_read import read_impair_steps
from lab.spec.yamlread import Entry, KeyPath, Reader, line_of, suggest


def read_scenarios(r: Reader, e: Entry, doc: Doc) -> None:
    items = r.items(e.value, ("scenarios",))
    seen: dict[str, int] = {}
    for index, item in enumerate(items or ()):
        path: KeyPath = ("scenarios", index)
        sc = ScenarioDraft(index, line_of(item))
        doc.scenarios.append(sc)
        required = SCENARIO.required
        if _has_key(item, "probe"):  # a probe sends its own bytes
            required = tuple(k for k in required if k not in ("send", "expect"))
        spec = r.fields(item, path, line_of(item), SCENARIO, required)
        if spec is None:
            continue
        if "name" in spec:
            sc.name = r.name(spec["name"].value, (*path, "name"))
            if sc.name is not None and sc.name in seen:
                r.p.add(
                    line_of(spec["name"].value),
                    (*path, "name"),
                    f"duplicate scenario name '{sc.name}' (first at line {seen[sc.name]})",
                )
            elif sc.name is not None:
                seen[sc.name] = line_of(spec["name"].value)
        if "service" in spec:
            sc.service = r.text(spec["service"].value, (*path, "service"))
            sc.service_line = line_of(spec["service"].value)
        if "clients" in spec:
            sc.clients = _read_clients(r, spec["clients"], (*path, "clients"))
        if "client_program" in spec:
            cp = spec["client_program"]
            sc.client_program = r.text(cp.value, (*path, "client_program"))
            sc.client_program_line = line_of(cp.value)
            for key in NOT_WITH_CLIENT_PROGRAM:
                if key in spec:
                    r.p.add(
                        spec[key].line,
                        (*path, key),
                        f"'{key}' does not apply to a client program (client_program)",
                    )
        _read_exchange(r, spec, path, sc)
        _read_scenario_knobs(r, spec, path, sc)
        _check_closes_after(r, spec, path, sc)
        _read_error_keys(r, spec, path, sc)
        if "impair" in spec:
            sc.impair = read_impair_steps(r, spec["impair"].value, (*path, "impair"), doc)


def _check_closes_after(
    r: Reader, spec: dict[str, Entry], path: KeyPath, sc: ScenarioDraft
) -> None:
    """``server_closes_after`` leaves something unanswered: fewer than the items sent."""
    after = sc.knobs.get("server_closes_after")
    sent = len(sc.send or ()) * int(sc.knobs.get("repeat", 1))
    if isinstance(after, int) and sc.send and after >= sent:
        r.p.add(
            spec["server_closes_after"].line,
            (*path, "server_closes_after"),
            f"{after} replies before the close, but only {sent} lines are sent: the server "
            "would never close early",
        )


def _has_key(node: Node, key: str) -> bool:
    return isinstance(node, MappingNode) and any(
        isinstance(k, ScalarNode) and k.value == key for k, _ in node.value
    )


def _read_error_keys(r: Reader, spec: dict[str, Entry], path: KeyPath, sc: ScenarioDraft) -> None:
    """``probe``, ``port``, ``expect_error`` and ``restart``: the error experiments' keys."""
    if "probe" in spec:
        sc.probe = _choice(r, SCENARIO["probe"], spec["probe"].value, (*path, "probe"))
        sc.probe_line = spec["probe"].line
        for key in NOT_WITH_PROBE:
            if key in spec:
                r.p.add(spec[key].line, (*path, key), f"'{key}' does not apply to a probe")
    if "port" in spec:
        e = spec["port"]
        port = r.value(SCENARIO["port"], e.value, (*path, "port"))
        sc.port, sc.port_line = port if isinstance(port, int) else None, e.line
        if "probe" not in spec or sc.probe not in (None, "refused"):
            r.p.add(e.line, (*path, "port"), "'port' applies to the refused probe only")
    if "expect_error" in spec:
        e = spec["expect_error"]
        sc.expect_error = _choice(r, SCENARIO["expect_error"], e.value, (*path, "expect_error"))
        if "probe" not in spec:
            r.p.add(e.line, (*path, "expect_error"), "'expect_error' applies to probes only")
    if "restart" in spec:
        sc.restart_line = spec["restart"].line
        sc.restart = _read_restarts(r, spec["restart"], (*path, "restart"))


def _read_restarts(r: Reader, e: Entry, path: KeyPath) -> list[Restart]:
    items = r.items(e.value, path)
    if items is None:
        return []
    if not items or len(items) > MAX_RESTARTS:
        r.p.add(e.line, path, f"needs 1 to {MAX_RESTARTS} restarts, got {len(items)}")
    out = []
    for j, item in enumerate(items):
        spec = r.fields(item, (*path, j), line_of(item), RESTART)
        if spec is None or "reuseaddr" not in spec:
            continue
        reuse = r.boolean(spec["reuseaddr"].value, (*path, j, "reuseaddr"))
        expect = None
        if "expect" in spec:
            expect_path = (*path, j, "expect")
            expect = _choice(r, RESTART["expect"], spec["expect"].value, expect_path)
            if expect is None:
                continue
        if reuse is not None:
            out.append(Restart(reuseaddr=reuse, expect=expect))
    return out


def _read_clients(r: Reader, e: Entry, path: KeyPath) -> list[tuple[str, int]]:
    items = r.items(e.value, path)
    if items is None:
        return []
    if not items:
        r.p.add(e.line, path, "needs at least one client node")
    out: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for j, item in enumerate(items):
        name = r.text(item, (*path, j))
        if name is None:
            continue
        if name in seen:
            r.p.add(
                line_of(item),
                (*path, j),
                f"node '{name}' is listed twice (first at line {seen[name]}); use concurrency "
                "for more connections",
            )
            continue
        seen[name] = line_of(item)
        out.append((name, line_of(item)))
    return out


def _read_exchange(r: Reader, spec: dict[str, Entry], path: KeyPath, sc: ScenarioDraft) -> None:
    """``send`` and ``expect``: one line (TCP) or datagram (UDP) each, one reply per item."""
    for key in ("send", "expect"):
        if key not in spec:
            continue
        e = spec[key]
        items = r.items(e.value, (*path, key))
        if items is None:
            continue
        if not items:
            r.p.add(e.line, (*path, key), f"'{key}' needs at least one item")
        texts = [_read_item(r, item, (*path, key, j)) for j, item in enumerate(items)]
        good = [t for t in texts if t is not None]
        setattr(sc, key, good if len(good) == len(texts) else None)
    send, expect = sc.send, sc.expect
    if send and expect is not None and len(expect) != len(send):
        r.p.add(
            spec["expect"].line,
            (*path, "expect"),
            f"expect has {len(expect)} item(s) but send has {len(send)}; give one expected "
            "reply per item sent",
        )


def _read_item(r: Reader, node: Node, path: KeyPath) -> str | None:
    text = r.text(node, path)
    if text is None:
        return None
    if text == "":
        r.p.add(line_of(node), path, "an item must not be empty")
        return None
    if any(c in text for c in "\r\n\0"):
        r.p.add(line_of(node), path, "an item is one line: no line breaks or NUL characters")
        return None
    size = len(text.encode())
    if size > MAX_ITEM_BYTES:
        r.p.add(
            line_of(node), path, f"an item is {size} bytes; at most {MAX_ITEM_BYTES} are allowed"
        )
        return None
    return text


def _read_scenario_knobs(
    r: Reader, spec: dict[str, Entry], path: KeyPath, sc: ScenarioDraft
) -> None:
    """The plain keys, read as declared; a bad value leaves the declared default."""
    for key in SCENARIO_KNOBS:
        if key in spec:
            value = r.value(SCENARIO[key], spec[key].value, (*path, key))
            if value is not None:
                sc.knobs[key] = value
    if "half_close" in spec:
        sc.half_close_line = line_of(spec["half_close"].value)
    if "claims" in spec:
        sc.claims = _read_claims(r, spec["claims"], (*path, "claims"))
    if "bug" in spec:
        sc.bug = _read_bug(r, spec["bug"], (*path, "bug"), [c for c, _ in sc.claims])
    for key in TCP_ONLY_KEYS:
        if key in spec:
            sc.tcp_only_lines[key] = line_of(spec[key].value)


def _read_claims(r: Reader, e: Entry, path: KeyPath) -> list[tuple[str, int]]:
    """Names of ``lab.spec.claims.CLAIM_SPECS``, each once; an unknown name gets the closest."""
    out: list[tuple[str, int]] = []
    for j, item in enumerate(r.items(e.value, path) or ()):
        name = r.text(item, (*path, j))
        if name is None:
            continue
        if name not in CLAIMS:
            hint = suggest(name, CLAIMS) or f" (known claims: {', '.join(CLAIMS)})"
            r.p.add(line_of(item), (*path, j), f"unknown claim '{name}'{hint}")
        elif name in (c for c, _ in out):
            r.p.add(line_of(item), (*path, j), f"claim '{name}' is listed twice")
        else:
            out.append((name, line_of(item)))
    return out


def _read_bug(r: Reader, e: Entry, path: KeyPath, claims: list[str]) -> Bug | None:
    """``bug``: what the bug is and the checks that catch it: the scenario's own claims or
    the built-in checks that every scenario gets."""
    spec = r.fields(e.value, path, e.line, BUG)
    if spec is None or "what" not in spec or "caught_by" not in spec:
        return None
    what = r.text(spec["what"].value, (*path, "what"))
    if what is not None and not what.strip():
        r.p.add(line_of(spec["what"].value), (*path, "what"), "say what the bug is")
        what = None
    race: list[str] = []
    known = [*claims, *BUILTIN_CHECKS]
    names: list[str] = []
    ok = True
    cb = spec["caught_by"]
    items = r.items(cb.value, (*path, "caught_by"))
    if items is not None and not items:
        r.p.add(cb.line, (*path, "caught_by"), "name at least one check that catches the bug")
    for j, item in enumerate(items or ()):
        name = r.text(item, (*path, "caught_by", j))
        problem = None
        if name is None:
            ok = False
            continue
        if name in names:
            problem = f"'{name}' is listed twice"
        elif name not in known:
            hint = suggest(name, known) or ""
            problem = (
                f"'{name}' is neither a claim of this scenario nor a built-in check{hint}; "
                f"here: {', '.join(known)}"
            )
        if problem:
            r.p.add(line_of(item), (*path, "caught_by", j), problem)
            ok = False
        else:
            names.append(name)
    if "race" in spec:
        for j, item in enumerate(r.items(spec["race"].value, (*path, "race")) or ()):
            name = r.text(item, (*path, "race", j))
            if name is not None and name not in names:
                r.p.add(line_of(item), (*path, "race", j), f"'{name}' is not in caught_by")
                ok = False
            elif name is not None:
                race.append(name)
    if what is None or not ok or not names:
        return None
    return Bug(what=what, caught_by=tuple(names), race=tuple(race))


def _choice(r: Reader, key: Key, node: Node, path: KeyPath) -> str | None:
    return r.choice(node, path, key.what, key.choices)
