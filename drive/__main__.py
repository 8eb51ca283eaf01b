"""`python -m drive …` (and `torchrun … -m drive train …`) runs the CLI."""

from drive.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
