//! Rows of text cells printed as an aligned table or as CSV.

/// A header and rows of text cells, each row as long as the header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    /// Column names.
    pub(crate) header: Vec<String>,
    /// The rows.
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names and no rows.
    pub(crate) fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub(crate) fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    /// The header in upper case and the rows, columns padded to their widest cell and
    /// separated by two spaces; no trailing spaces. Each line ends with `\n`.
    pub(crate) fn aligned(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| h.to_uppercase()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The header and rows as CSV (RFC 4180 quoting), lines ending with `\n`.
    pub(crate) fn csv(&self) -> String {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        // Writing to a Vec cannot fail, and every row has the header's length.
        for row in std::iter::once(&self.header).chain(&self.rows) {
            writer
                .write_record(row)
                .expect("CSV rows of one length into memory");
        }
        let bytes = writer.into_inner().expect("flushing into memory");
        String::from_utf8(bytes).expect("CSV of UTF-8 cells is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut table = Table::new(["id", "unit", "formula"]);
        table.push(vec![
            "sales.win_rate".into(),
            "percent".into(),
            "won / (won + lost) × 100".into(),
        ]);
        table.push(vec![
            "marketing.cac".into(),
            "currency".into(),
            "spend, new".into(),
        ]);
        table
    }

    #[test]
    fn columns_line_up() {
        assert_eq!(
            sample().aligned(),
            "ID              UNIT      FORMULA\n\
             sales.win_rate  percent   won / (won + lost) × 100\n\
             marketing.cac   currency  spend, new\n"
        );
    }

    #[test]
    fn empty_last_cells_leave_no_trailing_spaces() {
        let mut table = Table::new(["a", "b"]);
        table.push(vec!["long value".into(), String::new()]);
        assert_eq!(table.aligned(), "A           B\nlong value\n");
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(
            sample().csv(),
            "id,unit,formula\nsales.win_rate,percent,won / (won + lost) × 100\nmarketing.cac,currency,\"spend, new\"\n"
        );
    }
}
