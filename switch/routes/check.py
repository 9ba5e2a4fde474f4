"""`routes check`: what is wrong with a routing table, entry by entry, with line numbers.

Errors make a table unusable (a loader refuses it): unreadable entries (malformed digits,
low > high, ranges of unequal length...), routes or fallbacks to issuers the file does not
define, and conflicts: two overlapping entries with different issuers that rank equal (same
range width, same kinds of condition, same priority, conditions that can both hold), where only
file order decides. Nested entries are not conflicts: the more specific one wins by design.
Warnings: dead entries (never chosen for any PAN or transaction, shadowed everywhere by better
ones), issuers nothing routes to, a fallback equal to the issuer, no issuers defined at all.

Conflicts and dead entries come from the table build's own sweep, so checking a million entries
costs little more than loading them.
"""

from __future__ import annotations

from typing import Iterator

from switch.findings import ERROR, WARNING, Finding
from switch.routes.source import RoutesFile
from switch.routing import RoutingTable


def check(routes: RoutesFile, table: RoutingTable) -> list[Finding]:
    """All findings, ordered by line (file-level ones first)."""
    findings = [*routes.problems, *_issuer_findings(routes), *_conflicts(table), *_dead(table)]
    return sorted(findings, key=lambda finding: (finding.line or 0, finding.severity != ERROR))


def _issuer_findings(routes: RoutesFile) -> Iterator[Finding]:
    for entry in routes.entries:
        if entry.fallback == entry.issuer:
            yield Finding(WARNING, entry.line, f"{entry.source}.fallback", "the same issuer as `issuer`: no fallback at all")
    if routes.issuers is None:
        yield Finding(WARNING, None, "", "no [[issuers]] defined: issuer names are not checked")
        return
    used: set[str] = set()
    for entry in routes.entries:
        for key, name in (("issuer", entry.issuer), ("fallback", entry.fallback)):
            if name is None:
                continue
            used.add(name)
            if name not in routes.issuers:
                yield Finding(ERROR, entry.line, f"{entry.source}.{key}", f"issuer {name!r} is not defined in [[issuers]]")
    for name, line in routes.issuers.items():
        if name not in used:
            yield Finding(WARNING, line, "issuers", f"issuer {name!r}: nothing routes to it")


def _conflicts(table: RoutingTable) -> Iterator[Finding]:
    """Ties the table build found, where the issuers differ and both can apply to one
    transaction; reported at the later entry, naming the earlier."""
    for earlier, later in table.ties:
        if later.issuer != earlier.issuer and (earlier.conditions is None or earlier.conditions.overlaps(later.conditions)):
            yield Finding(
                ERROR, later.line, later.source,
                f"conflict: {later.span()} -> {later.issuer} overlaps {earlier.where()} {earlier.span()} -> "
                f"{earlier.issuer} with equal specificity and priority; only file order decides",
            )


def _dead(table: RoutingTable) -> Iterator[Finding]:
    live = {id(entry) for entry in table.live_entries()}
    for entry in table.entries:
        if id(entry) in live:
            continue
        better = next((c for c in table.candidates_at(entry.start) if c.covers(entry)), None)
        by = f" (e.g. by {better.where()} {better.span()} -> {better.issuer})" if better else ""
        yield Finding(WARNING, entry.line, entry.source, f"dead: {entry.span()} -> {entry.issuer} is never chosen{by}")
