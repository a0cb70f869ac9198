//! Aligned plain-text tables for the operator commands.

/// A table printed with columns padded to their widest cell.
pub struct Table {
    headers: Vec<&'static str>,
    /// Columns aligned right (numbers).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// `headers` ending in `>` are right-aligned (the marker is not printed).
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.trim_end_matches('>')).collect(),
            right: headers.iter().map(|h| h.ends_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|row| row.get(i).map_or(0, |c| c.chars().count()))
                .chain([self.headers[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    if self.right[i] {
                        format!("{cell:>w$}", w = widths[i])
                    } else {
                        format!("{cell:<w$}", w = widths[i])
                    }
                })
                .collect();
            padded.join("  ").trim_end().to_owned()
        };
        let mut out = line(self.headers.clone());
        for row in &self.rows {
            out.push('\n');
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        out
    }
}

/// Shortens `text` to `max` characters, marking the cut.
pub fn clip(text: &str, max: usize) -> String {
    let text = text.replace(['\n', '\r'], " ");
    if text.chars().count() <= max {
        text
    } else {
        let kept: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// `2 h 13 min`, `3 d 4 h`, or `passed 5 min ago` for a negative number of seconds.
pub fn time_left(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    let text = if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min")
    };
    if seconds < 0 {
        format!("passed {text} ago")
    } else {
        text
    }
}

/// `1.5 MiB`.
pub fn bytes(n: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell() {
        let mut table = Table::new(&["ID>", "STATE", "ERROR"]);
        table.row(vec!["7".into(), "failed".into(), "boom".into()]);
        table.row(vec!["12".into(), "pending".into(), String::new()]);
        assert_eq!(
            table.render(),
            "ID  STATE    ERROR\n 7  failed   boom\n12  pending"
        );
    }

    #[test]
    fn long_text_is_clipped_on_one_line() {
        assert_eq!(clip("abc\ndef", 10), "abc def");
        assert_eq!(clip("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn time_left_reads_naturally() {
        assert_eq!(time_left(2 * 3600 + 13 * 60 + 5), "2 h 13 min");
        assert_eq!(time_left(3 * 86_400 + 4 * 3600), "3 d 4 h");
        assert_eq!(time_left(-300), "passed 5 min ago");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12), "12 B");
    }
}
