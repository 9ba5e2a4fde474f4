"""Replaying captured traffic against a target switch and comparing what comes back.

plan: capture -> per-connection exchanges (request + captured answer); rewrite: fresh volatile
fields; compare and rules: what counts as the same answer; engine: the Trio part that sends and
matches; report: diffs, summary table, JUnit XML, progress bar.
"""
