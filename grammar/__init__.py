# The Elig grammar ships inside the package as `compiler.grammar` (see pyproject.toml).
