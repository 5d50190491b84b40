"""Figure export: HTML always; PNG only when a browser is there, and never a hang without one."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from unlearnkit.series import export


@pytest.fixture
def fresh_probe():
    export._static_exporter_error.cache_clear()
    export._warn_once.cache_clear()
    yield
    export._static_exporter_error.cache_clear()
    export._warn_once.cache_clear()


def test_without_a_browser_figures_are_html_only_with_one_warning(tmp_path, monkeypatch, fresh_probe):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
    figure = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    with pytest.warns(UserWarning, match="HTML only.*no Chrome or Chromium"):
        written = export.save_figure(figure, tmp_path / "figures", "line")
    assert [p.name for p in written] == ["line.html"]
    html = (tmp_path / "figures" / "line.html").read_text()
    assert "plotly.min.js" in html and (tmp_path / "figures" / "plotly.min.js").is_file()
    assert not export.png_available()


def test_with_png_switched_off_no_browser_is_looked_for(tmp_path, monkeypatch, fresh_probe):
    monkeypatch.setattr(export, "browser_path", lambda: pytest.fail("png=False must not probe for a browser"))
    written = export.save_figure(go.Figure(), tmp_path, "empty", png=False)
    assert [p.name for p in written] == ["empty.html"]
