"""`python -m tasks.stages.sync summary`: the last sync report as Markdown (for CI job summaries)."""

import sys

from tasks.stages.sync.report import print_summary

if sys.argv[1:] != ["summary"]:
    print("usage: python -m tasks.stages.sync summary", file=sys.stderr)
    sys.exit(2)
sys.exit(print_summary())
