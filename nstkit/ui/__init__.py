"""The faces a user sees: the command line, the notebook panel (`StylePanel`) and the notebooks' helpers."""
