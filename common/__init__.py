"""The bottom layer: what every package may import (strict config loading); imports nothing of the project."""
