"""The `batch-terminator` command line: demo, local, plan, request, validate, audit."""
