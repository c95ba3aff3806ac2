"""Every solver's float64 iterates, pinned: a refactor must leave them bitwise unchanged."""

import json

import pinned
import pytest

PINS = json.loads(pinned.PIN_FILE.read_text())


@pytest.mark.skipif(
    PINS["host"] != pinned.host_key(),
    reason="the pins were written on another processor (see tests/pinned.py)",
)
def test_iterates_match_the_pins():
    assert pinned.compute() == PINS["pins"]
