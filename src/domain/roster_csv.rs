//! Roster CSV files as schools have them: Excel's "CSV" in Japan is Shift_JIS (CP932),
//! its "CSV UTF-8" has a BOM, other tools write plain UTF-8. The encoding is detected, not
//! asked for. Columns are found by their header; unknown columns become attributes.

use std::borrow::Cow;

use encoding_rs::{Encoding, SHIFT_JIS, UTF_8};

use super::{DomainError, FieldError};

pub const MAX_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_ROWS: usize = 50_000;

/// Columns that are attributes under their own name.
const ATTRIBUTE_COLUMNS: [&str; 4] = ["grade", "class", "club", "route"];
pub const EXPORT_COLUMNS: [&str; 14] = [
    "name",
    "name_kana",
    "student_name",
    "relation",
    "email1",
    "email2",
    "email3",
    "email4",
    "grade",
    "class",
    "club",
    "route",
    "external_id",
    "lists",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Name,
    NameKana,
    StudentName,
    Relation,
    /// email1..email4, as 0..3.
    Email(usize),
    ExternalId,
    Lists,
    Attribute(String),
}

/// Decodes the upload: a BOM decides; else valid UTF-8 is UTF-8; else Shift_JIS, which
/// encoding_rs decodes as Windows' CP932 (髙, 﨑, ①, half-width kana).
pub fn decode(bytes: &[u8]) -> Result<(Cow<'_, str>, &'static Encoding), String> {
    if let Some((encoding, bom_length)) = Encoding::for_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom_length..]);
        return if had_errors {
            Err(format!("the file is not valid {}", encoding.name()))
        } else {
            Ok((text, encoding))
        };
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((Cow::Borrowed(text), UTF_8));
    }
    let (text, had_errors) = SHIFT_JIS.decode_without_bom_handling(bytes);
    if had_errors {
        return Err("the file is neither UTF-8 nor Shift_JIS; save it as CSV (UTF-8) or CSV from Excel".into());
    }
    Ok((text, SHIFT_JIS))
}

/// One data row: its line (the header is line 1) and its cells by column.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub cells: Vec<String>,
}

#[derive(Debug)]
pub struct Roster {
    pub columns: Vec<Column>,
    /// The header as written, for error messages.
    pub names: Vec<String>,
    pub rows: Vec<Row>,
}

impl Roster {
    /// The row's cell in `column`; None when the file has no such column.
    pub fn cell<'a>(&self, row: &'a Row, column: &Column) -> Option<&'a str> {
        self.columns.iter().position(|c| c == column).map(|i| row.cells[i].as_str())
    }
}

/// Reverses `neutralise`: a cell that export protected with a leading `'` comes back as
/// it was, so an exported file imports unchanged.
fn restore(cell: &str) -> String {
    let cell = cell.trim();
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest.to_string(),
        _ => cell.to_string(),
    }
}

/// Spreadsheet formula injection (OWASP "CSV injection"): a cell starting with = + - @
/// (or a tab or carriage return) would run as a formula when the file is opened; a leading
/// `'` makes it text.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

fn column_of(name: &str) -> Result<Column, String> {
    let key = name.trim().to_lowercase();
    Ok(match key.as_str() {
        "name" => Column::Name,
        "name_kana" => Column::NameKana,
        "student_name" => Column::StudentName,
        "relation" => Column::Relation,
        "external_id" => Column::ExternalId,
        "lists" => Column::Lists,
        k if ATTRIBUTE_COLUMNS.contains(&k) => Column::Attribute(k.to_string()),
        k if k.starts_with("email") && k[5..].parse::<usize>().is_ok() => {
            let n: usize = k[5..].parse().unwrap_or(0);
            if !(1..=4).contains(&n) {
                return Err(format!(
                    "a guardian has at most 4 e-mail addresses (email1 to email4); {name} is not imported"
                ));
            }
            Column::Email(n - 1)
        }
        "" => return Err("a column has no name".into()),
        _ => Column::Attribute(name.trim().to_string()),
    })
}

/// Parses the decoded text. Errors about the file as a whole (header, size, a row the CSV
/// reader cannot read) come back as `Err`; row-level checks happen later, against the
/// stored roster.
pub fn parse(text: &str) -> Result<Roster, DomainError> {
    let invalid = |error: FieldError| DomainError::Invalid(vec![error]);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        Some(Err(e)) => return Err(invalid(FieldError::at_line(1, "header", format!("cannot be read: {e}")))),
        None => return Err(invalid(FieldError::at_line(1, "header", "the file is empty"))),
    };
    // Attribute names are free text: export neutralises them like any other cell.
    let names: Vec<String> = header.iter().map(restore).collect();
    let mut errors = Vec::new();
    let mut columns = Vec::new();
    for name in &names {
        match column_of(name) {
            Ok(column) if columns.contains(&column) => {
                errors.push(FieldError::at_line(1, name.clone(), "appears twice in the header"))
            }
            Ok(column) => columns.push(column),
            Err(message) => errors.push(FieldError::at_line(1, name.clone(), message)),
        }
    }
    if !columns.contains(&Column::Name) {
        errors.push(FieldError::at_line(1, "name", "the header has no name column"));
    }
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let mut rows = Vec::new();
    for (index, record) in records.enumerate() {
        let line = index as u64 + 2;
        let record = record.map_err(|e| invalid(FieldError::at_line(line, "row", format!("cannot be read: {e}"))))?;
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue; // Excel leaves empty rows at the end.
        }
        if rows.len() == MAX_ROWS {
            return Err(DomainError::TooManyRows { line, max: MAX_ROWS });
        }
        let mut cells: Vec<String> = record.iter().map(restore).collect();
        cells.resize(columns.len(), String::new());
        rows.push(Row { line, cells });
    }
    Ok(Roster { columns, names, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SJIS: &[u8] = include_bytes!("../../tests/fixtures/roster-excel-sjis.csv");
    const UTF8_BOM: &[u8] = include_bytes!("../../tests/fixtures/roster-utf8-bom.csv");

    #[test]
    fn excel_shift_jis_and_utf8_with_bom_decode_to_the_same_text() {
        let (sjis, encoding) = decode(SJIS).unwrap();
        assert_eq!(encoding, SHIFT_JIS);
        let (utf8, encoding) = decode(UTF8_BOM).unwrap();
        assert_eq!(encoding, UTF_8);
        assert_eq!(sjis.replace("\r\n", "\n"), utf8.replace("\r\n", "\n"));
        for cp932_only in ["髙橋", "山﨑", "①", "ｹﾝﾀ"] {
            assert!(sjis.contains(cp932_only), "{cp932_only}");
        }
    }

    #[test]
    fn bom_less_utf8_is_not_mistaken_for_shift_jis() {
        let text = "name,email1\n山田 花子,hanako@example.jp\n";
        let (decoded, encoding) = decode(text.as_bytes()).unwrap();
        assert_eq!(encoding, UTF_8);
        assert_eq!(decoded, text);
    }

    #[test]
    fn the_fixture_has_header_columns_and_spreadsheet_line_numbers() {
        let (text, _) = decode(SJIS).unwrap();
        let roster = parse(&text).unwrap();
        assert_eq!(roster.columns[4], Column::Email(0));
        assert_eq!(roster.columns[8], Column::Attribute("grade".into()));
        assert_eq!(roster.rows.len(), 9);
        assert_eq!(roster.rows[0].line, 2);
        assert_eq!(roster.rows[4].cells[5], "kenta sato@example.jp");
        assert_eq!(roster.rows[8].line, 10);
        assert_eq!(roster.rows[8].cells[0], "=HYPERLINK(\"http://x\")", "kept as text");
    }

    fn field_errors(text: &str) -> Vec<FieldError> {
        match parse(text) {
            Err(DomainError::Invalid(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn a_fifth_address_column_is_an_error_not_ignored() {
        let errors = field_errors("name,email1,email5\nx,a@x.jp,b@x.jp\n");
        assert_eq!(errors[0].field, "email5");
        assert_eq!(errors[0].line, Some(1));
        let errors = field_errors("name,name\n");
        assert_eq!(errors[0].field, "name");
        let errors = field_errors("email1\n");
        assert_eq!(errors[0].field, "name");
        assert_eq!(field_errors(""), [FieldError::at_line(1, "header", "the file is empty")]);
    }

    #[test]
    fn a_file_past_the_row_limit_is_too_many_rows_at_the_first_extra_line() {
        let mut text = String::from("name\n");
        for i in 0..MAX_ROWS {
            text.push_str(&format!("guardian {i}\n"));
        }
        // Empty rows (Excel leaves them at the end) do not count.
        text.push_str(",\n");
        assert_eq!(parse(&text).unwrap().rows.len(), MAX_ROWS);
        text.push_str("one too many\n");
        let last_line = MAX_ROWS as u64 + 3;
        assert_eq!(parse(&text).unwrap_err(), DomainError::TooManyRows { line: last_line, max: MAX_ROWS });
    }

    #[test]
    fn neutralised_cells_come_back_as_they_were() {
        for cell in ["=1+1", "+81 90", "-5", "@SUM(A1)", "plain", "'quoted"] {
            assert_eq!(restore(&neutralise(cell)), cell);
        }
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
    }
}
