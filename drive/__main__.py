"""`python -m drive …` (and `torchrun … -m drive train …`) runs the CLI."""

from drive.cli import run

if __name__ == "__main__":
    run()
