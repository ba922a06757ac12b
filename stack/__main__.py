"""``python -m stack``: the stack's command line until ``energywatch stack`` mounts it."""

from stack.cli import app

if __name__ == "__main__":
    app()
