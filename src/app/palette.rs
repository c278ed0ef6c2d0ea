//! The colours of the plots' series ([`crate::app::plot`]): one per experiment of
//! `apical reproduce all`, and a grey for reference lines.

use plotters::style::RGBColor;

/// The palette index of reference lines (chance, drawn dashed): a grey no series has.
pub(crate) const REFERENCE_COLOR: usize = usize::MAX;

/// The colour of palette index `i` (series keep theirs across charts).
pub(crate) fn color(i: usize) -> RGBColor {
    if i == REFERENCE_COLOR {
        return RGBColor(110, 110, 110);
    }
    const C: [RGBColor; 26] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 0),
        RGBColor(0, 0, 128),
        // Lighter ones after them: every experiment of `apical reproduce all` (26) has a
        // colour of its own.
        RGBColor(255, 187, 120),
        RGBColor(152, 223, 138),
        RGBColor(255, 152, 150),
        RGBColor(197, 176, 213),
        RGBColor(196, 156, 148),
        RGBColor(158, 218, 229),
        RGBColor(219, 219, 141),
        RGBColor(247, 182, 210),
        RGBColor(128, 0, 64),
        RGBColor(0, 100, 0),
        RGBColor(0, 100, 60),
        RGBColor(200, 160, 0),
        RGBColor(90, 60, 160),
        RGBColor(160, 82, 45),
    ];
    C[i % C.len()]
}
