"""The `chatft` command line: main (the console script), app (the typer app) and commands/ (one module per command)."""
