//! Text tables for a terminal.

use unicode_width::UnicodeWidthStr;

/// `s` followed by spaces up to `cols` terminal columns: a CJK character takes two, so padding by
/// `format!("{s:<n}")` (which counts characters) misaligns Chinese labels.
pub fn pad_right(s: &str, cols: usize) -> String {
    format!("{s}{}", " ".repeat(cols.saturating_sub(s.width())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_by_display_width() {
        assert_eq!(pad_right("board", 8), "board   ");
        assert_eq!(pad_right("交通运输", 10), "交通运输  ");
        assert_eq!(pad_right("unclassified", 4), "unclassified");
        // Labels of the same width line up whatever their script.
        assert_eq!(
            pad_right("城乡建设", 12).width(),
            pad_right("hotline", 12).width()
        );
    }
}
