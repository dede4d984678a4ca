"""Lambda entry points: parse, call the core, report."""
