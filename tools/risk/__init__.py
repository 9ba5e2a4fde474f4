"""Engineering tools for risk rules files: check (findings), test (cases on a simulated clock),
bench (CPU cost of the risk stage). The command is tools/cli/risk.py; docs/risk.md, "Tools"."""
