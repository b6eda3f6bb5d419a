"""`python -m magseg` runs the command line."""

from magseg.cli import main

main()
