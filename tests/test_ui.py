"""What the console shows is what the user wrote: no markup or emoji codes taken from it."""

from __future__ import annotations

import pytest

from dashscale.ui import UI


def test_colons_in_a_message_stay_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    text = "secretsmanager:app:b:AWSCURRENT and [bold]x[/bold] :smile:"
    ui = UI()
    ui.error(f"bad reference {text}", f"check {text}")
    ui.info(text)
    ui.result(text)
    captured = capsys.readouterr()
    assert captured.err.count(text) == 3, captured.err
    assert text in captured.out
