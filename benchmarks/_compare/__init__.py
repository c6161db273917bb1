"""Worker-side pieces of ``benchmarks/compare_builtin.py`` (one subprocess per side)."""
