"""Pure logic: config models, version rules, plans, hashing. No I/O, no doit."""
