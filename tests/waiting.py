"""Waiting for what the registry does in the background (a notification applied, a cache loaded)."""
import time


def eventually(check, seconds: float = 10.0):
    """Call `check` until it gives something true or `seconds` pass; its last result."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)
