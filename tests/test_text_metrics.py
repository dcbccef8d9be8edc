"""Edit distance: the basis of CER and of the reports' error kinds."""

import pytest

from harness.contracts.text_metrics import edit_distance


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        ("907565", "907565", 0),
        ("907565", "907785", 2),
        ("", "123", 3),
        ("1234", "124", 1),
        ("12", "21", 2),
    ],
)
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d == edit_distance(b, a)
