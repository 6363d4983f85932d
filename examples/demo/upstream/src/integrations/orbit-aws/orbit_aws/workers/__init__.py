"""Workers: a subpackage that only setuptools_scm's git file finder puts in the wheel."""
