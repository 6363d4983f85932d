"""One thin module per outside system. No doit."""
