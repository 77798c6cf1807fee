"""Research code of the repository, not of the installed package: the method comparison and the sample clip.

Scripts, benchmarks, tests and notebooks 06-07 import it from a clone (its root on `sys.path`)."""
