"""Every figure is drawn and written one way (navigator.figures): Agg, atomic PNGs, closed once written, and no
warning per glyph for labels in scripts the font lacks."""

from __future__ import annotations

import warnings
from pathlib import Path

from navigator.figures import pyplot, save_png

LABEL = "runs/飞行/最好.pt"  # a pilot path in a script matplotlib's default font has no glyphs for
ROOT = Path(__file__).resolve().parents[1]


def _glyph_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_labels_the_font_lacks_are_drawn_without_a_warning_per_glyph(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import matplotlib.figure

        control = matplotlib.figure.Figure()  # drawn without navigator.figures: the font really lacks the glyphs
        control.add_subplot().set_title(LABEL)
        control.savefig(tmp_path / "control.png")
    assert _glyph_warnings(caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plt = pyplot()
        figure, axes = plt.subplots()
        axes.set_title(LABEL)
        axes.bar([LABEL], [1.0])
        figure.tight_layout()
        save_png(figure, tmp_path / "plot.png")
    assert _glyph_warnings(caught) == []
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(figure.number)  # closed once written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.png", "plot.png"]  # no temporary left


def test_no_module_draws_around_navigator_figures():
    drawing = [path.relative_to(ROOT) for path in (ROOT / "navigator").rglob("*.py")
               if 'matplotlib.use(' in path.read_text(encoding="utf-8") and path.name != "figures.py"]
    assert drawing == []
