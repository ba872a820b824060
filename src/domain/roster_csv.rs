//! Roster CSV files as schools have them: Excel's "CSV" in Japan is Shift_JIS (CP932),
//! its "CSV UTF-8" has a BOM, other tools write plain UTF-8. The encoding is detected, not
//! asked for. Columns are found by their header; unknown columns become attributes.

use std::borrow::Cow;

use csv_core::ReadFieldResult;
use encoding_rs::{Decoder, DecoderResult, Encoding, SHIFT_JIS, UTF_8};

use super::member::MAX_ATTRIBUTES;
use super::{DomainError, FieldError, char_len};

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

/// Columns a file may have: the 14 known ones and as many attribute columns as a guardian
/// may have attributes. A header past it is refused before any row is read.
pub const MAX_COLUMNS: usize = EXPORT_COLUMNS.len() + MAX_ATTRIBUTES;
/// Characters in one cell: the longest field of a guardian is an address (254); this leaves
/// room for a `lists` cell naming several lists. Checked while the cell is read, so no cell
/// is held longer than this.
pub const MAX_CELL_CHARS: usize = 1_000;
/// A cell of more bytes than this has more than `MAX_CELL_CHARS` characters (UTF-8 takes at
/// most 4 bytes a character): the reader's cell buffer.
const MAX_CELL_BYTES: usize = 4 * MAX_CELL_CHARS;
/// Decoded text is produced this many bytes at a time: a Shift_JIS file is never held
/// decoded as a whole.
const DECODE_BUFFER: usize = 64 * 1024;

/// Where the reader takes its UTF-8 from: the upload itself when it is UTF-8 already, else
/// a decoder producing a buffer at a time.
enum Input<'a> {
    Utf8 {
        bytes: &'a [u8],
        pos: usize,
    },
    Decoding {
        encoding: &'static Encoding,
        decoder: Decoder,
        raw: &'a [u8],
        raw_pos: usize,
        buffer: Box<[u8]>,
        start: usize,
        end: usize,
        /// The decoder is done: at the end of the input, or at bytes that do not decode.
        finished: bool,
        /// The raw bytes after the buffer do not decode: an error once the buffer is read.
        malformed: bool,
    },
}

impl<'a> Input<'a> {
    /// Picks the encoding: a BOM decides; else valid UTF-8 is UTF-8; else Shift_JIS, which
    /// encoding_rs decodes as Windows' CP932 (髙, 﨑, ①, half-width kana).
    fn detect(bytes: &'a [u8]) -> Result<Input<'a>, DomainError> {
        let decoding = |encoding: &'static Encoding, raw: &'a [u8]| Input::Decoding {
            encoding,
            decoder: encoding.new_decoder_without_bom_handling(),
            raw,
            raw_pos: 0,
            buffer: vec![0; DECODE_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            finished: false,
            malformed: false,
        };
        if let Some((encoding, bom_length)) = Encoding::for_bom(bytes) {
            let rest = &bytes[bom_length..];
            if encoding != UTF_8 {
                return Ok(decoding(encoding, rest));
            }
            return match std::str::from_utf8(rest) {
                Ok(_) => Ok(Input::Utf8 { bytes: rest, pos: 0 }),
                Err(e) => {
                    let line = 1 + rest[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u64;
                    Err(invalid(line, "body", "the file is not valid UTF-8"))
                }
            };
        }
        if std::str::from_utf8(bytes).is_ok() {
            return Ok(Input::Utf8 { bytes, pos: 0 });
        }
        Ok(decoding(SHIFT_JIS, bytes))
    }

    fn encoding(&self) -> &'static Encoding {
        match self {
            Input::Utf8 { .. } => UTF_8,
            Input::Decoding { encoding, .. } => encoding,
        }
    }

    /// The text not read yet (empty at the end), decoding more when the buffer is read.
    /// `line` is where the reader is, for the error about bytes that do not decode.
    fn fill(&mut self, line: u64) -> Result<&[u8], DomainError> {
        if let Input::Decoding { encoding, decoder, raw, raw_pos, buffer, start, end, finished, malformed } = self
            && start == end
        {
            if !*finished {
                let (result, read, written) =
                    decoder.decode_to_utf8_without_replacement(&raw[*raw_pos..], buffer, true);
                *raw_pos += read;
                *start = 0;
                *end = written;
                *malformed = matches!(result, DecoderResult::Malformed(..));
                *finished = !matches!(result, DecoderResult::OutputFull);
            }
            if *malformed && start == end {
                let message = if *encoding == SHIFT_JIS {
                    "the file is neither UTF-8 nor Shift_JIS; save it as CSV (UTF-8) or CSV from Excel".to_string()
                } else {
                    format!("the file is not valid {}", encoding.name())
                };
                return Err(invalid(line, "body", message));
            }
        }
        Ok(match self {
            Input::Utf8 { bytes, pos } => &bytes[*pos..],
            Input::Decoding { buffer, start, end, .. } => &buffer[*start..*end],
        })
    }

    fn consume(&mut self, n: usize) {
        match self {
            Input::Utf8 { pos, .. } => *pos += n,
            Input::Decoding { start, .. } => *start += n,
        }
    }
}

fn invalid(line: u64, field: impl Into<String>, message: impl Into<String>) -> DomainError {
    DomainError::Invalid(vec![FieldError::at_line(line, field, message)])
}

/// One data row: its line in the file (the header is line 1) and its cells, trimmed, as
/// many as the header has columns at most. One string holds all cells.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub line: u64,
    text: String,
    ends: Vec<u32>,
}

impl Row {
    /// The cell in column `index`; empty where the row is shorter than the header.
    pub fn cell(&self, index: usize) -> &str {
        match self.ends.get(index) {
            Some(&end) => {
                let start = if index == 0 { 0 } else { self.ends[index - 1] as usize };
                &self.text[start..end as usize]
            }
            None => "",
        }
    }

    fn push(&mut self, cell: &str) {
        self.text.push_str(cell);
        self.ends.push(self.text.len() as u32);
    }

    fn is_blank(&self) -> bool {
        self.text.is_empty()
    }
}

/// The header: what each column is, and its name as written (for error messages).
#[derive(Debug)]
pub struct Header {
    pub columns: Vec<Column>,
    pub names: Vec<String>,
}

impl Header {
    /// The row's cell in `column`; None when the file has no such column.
    pub fn cell<'r>(&self, row: &'r Row, column: &Column) -> Option<&'r str> {
        self.columns.iter().position(|c| c == column).map(|i| row.cell(i))
    }

    fn parse(line: u64, names: Vec<String>) -> Result<Header, DomainError> {
        let mut errors = Vec::new();
        let mut columns = Vec::new();
        for name in &names {
            match column_of(name) {
                // A column without a name is named by its place.
                Err(message) if name.is_empty() => errors.push(FieldError::at_line(
                    line,
                    "header",
                    format!("column {}: {message}", columns.len() + errors.len() + 1),
                )),
                Ok(column) if columns.contains(&column) => {
                    errors.push(FieldError::at_line(line, name.clone(), "appears twice in the header"))
                }
                Ok(column) => columns.push(column),
                Err(message) => errors.push(FieldError::at_line(line, name.clone(), message)),
            }
        }
        if !columns.contains(&Column::Name) {
            errors.push(FieldError::at_line(line, "name", "the header has no name column"));
        }
        DomainError::check(Header { columns, names }, errors)
    }
}

/// Reads a roster file a row at a time, from the upload as it is (no decoded copy of the
/// whole file, no row kept after it is handed out). Every limit is checked while reading:
/// a header of too many columns, a cell too long or a row too many stops the reader at once.
pub struct RosterReader<'a> {
    input: Input<'a>,
    csv: csv_core::Reader,
    /// The line the reader is on (1-based): newlines read so far, plus one.
    line: u64,
    /// The header's names as written, for errors, and so how many cells a row keeps.
    names: Vec<String>,
    rows: usize,
    cell: Box<[u8]>,
}

impl<'a> RosterReader<'a> {
    /// Detects the encoding and reads the header. Errors about the file as a whole
    /// (encoding, header, size) come back as `Err`; row-level checks happen later, against
    /// the stored roster.
    pub fn new(bytes: &'a [u8]) -> Result<(RosterReader<'a>, Header), DomainError> {
        let mut reader = RosterReader {
            input: Input::detect(bytes)?,
            csv: csv_core::Reader::new(),
            line: 1,
            names: vec![],
            rows: 0,
            cell: vec![0; MAX_CELL_BYTES].into_boxed_slice(),
        };
        let mut header = Row::default();
        if !reader.read_record(&mut header, MAX_COLUMNS, "header")? {
            return Err(invalid(1, "header", "the file is empty"));
        }
        // Attribute names are free text: export neutralises them like any other cell.
        let names: Vec<String> = (0..header.ends.len()).map(|i| header.cell(i).to_string()).collect();
        reader.names = names.clone();
        Ok((reader, Header::parse(header.line, names)?))
    }

    /// The encoding the file is read as.
    pub fn encoding(&self) -> &'static Encoding {
        self.input.encoding()
    }

    /// The next row that has a non-empty cell (Excel leaves empty rows at the end), or
    /// None at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Row>, DomainError> {
        let mut row = Row::default();
        loop {
            if !self.read_record(&mut row, self.names.len(), "row")? {
                return Ok(None);
            }
            if row.is_blank() {
                continue;
            }
            if self.rows == MAX_ROWS {
                return Err(DomainError::TooManyRows { line: row.line, max: MAX_ROWS });
            }
            self.rows += 1;
            return Ok(Some(row));
        }
    }

    /// The name of column `index` in errors.
    fn column_name(&self, index: usize, record: &'static str) -> String {
        match self.names.get(index) {
            Some(name) if record == "row" => name.clone(),
            _ => record.to_string(),
        }
    }

    /// Reads one record into `row`, keeping its first `keep` cells (trimmed, restored);
    /// false at the end of the file. `record` names it in errors ("header" or "row").
    fn read_record(&mut self, row: &mut Row, keep: usize, record: &'static str) -> Result<bool, DomainError> {
        row.text.clear();
        row.ends.clear();
        // csv_core skips empty lines itself; skipping them here tells the record's line.
        loop {
            let input = self.input.fill(self.line)?;
            let blank = input.iter().take_while(|&&b| b == b'\n' || b == b'\r').count();
            self.line += input[..blank].iter().filter(|&&b| b == b'\n').count() as u64;
            let more = blank < input.len();
            self.input.consume(blank);
            if more || blank == 0 {
                break;
            }
        }
        row.line = self.line;
        let mut cells = 0;
        let mut length = 0;
        loop {
            let input = self.input.fill(self.line)?;
            let at_end = input.is_empty();
            let (result, read, written) = self.csv.read_field(input, &mut self.cell[length..]);
            self.line += input[..read].iter().filter(|&&b| b == b'\n').count() as u64;
            self.input.consume(read);
            length += written;
            match result {
                ReadFieldResult::InputEmpty if !at_end => continue,
                ReadFieldResult::InputEmpty | ReadFieldResult::End => return Ok(cells > 0),
                ReadFieldResult::OutputFull => {
                    return Err(invalid(
                        row.line,
                        self.column_name(cells, record),
                        format!("a cell holds at most {MAX_CELL_CHARS} characters"),
                    ));
                }
                ReadFieldResult::Field { record_end } => {
                    cells += 1;
                    if cells > MAX_COLUMNS {
                        return Err(invalid(
                            row.line,
                            record,
                            format!(
                                "a roster has at most {MAX_COLUMNS} columns ({} known ones and up to {MAX_ATTRIBUTES} attributes)",
                                EXPORT_COLUMNS.len()
                            ),
                        ));
                    }
                    if cells <= keep {
                        // Whole fields of valid UTF-8 split on ASCII bytes are valid UTF-8.
                        let text = std::str::from_utf8(&self.cell[..length]).unwrap_or_default();
                        let field = || self.column_name(cells - 1, record);
                        if char_len(text) > MAX_CELL_CHARS {
                            return Err(invalid(
                                row.line,
                                field(),
                                format!("a cell holds at most {MAX_CELL_CHARS} characters"),
                            ));
                        }
                        if text.contains('\0') {
                            return Err(invalid(row.line, field(), "must not contain the NUL character (U+0000)"));
                        }
                        row.push(restore(text));
                    }
                    length = 0;
                    if record_end {
                        return Ok(true);
                    }
                }
            }
        }
    }
}

/// Reverses `neutralise`: a cell that export protected with a leading `'` comes back as
/// it was, so an exported file imports unchanged.
fn restore(cell: &str) -> &str {
    let cell = cell.trim();
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => cell,
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

/// Every row of a file, for tests.
#[cfg(test)]
pub(crate) fn read_all(bytes: &[u8]) -> Result<(Header, Vec<Row>), DomainError> {
    let (mut reader, header) = RosterReader::new(bytes)?;
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row()? {
        rows.push(row);
    }
    Ok((header, rows))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SJIS: &[u8] = include_bytes!("../../tests/fixtures/roster-excel-sjis.csv");
    const UTF8_BOM: &[u8] = include_bytes!("../../tests/fixtures/roster-utf8-bom.csv");

    fn cells(rows: &[Row]) -> Vec<Vec<&str>> {
        rows.iter().map(|row| (0..row.ends.len()).map(|i| row.cell(i)).collect()).collect()
    }

    #[test]
    fn excel_shift_jis_and_utf8_with_bom_read_as_the_same_rows() {
        assert_eq!(RosterReader::new(SJIS).unwrap().0.encoding(), SHIFT_JIS);
        assert_eq!(RosterReader::new(UTF8_BOM).unwrap().0.encoding(), UTF_8);
        let (_, sjis) = read_all(SJIS).unwrap();
        let (_, utf8) = read_all(UTF8_BOM).unwrap();
        assert_eq!(cells(&sjis), cells(&utf8));
        let text: String = cells(&sjis).concat().concat();
        for cp932_only in ["髙橋", "山﨑", "①", "ｹﾝﾀ"] {
            assert!(text.contains(cp932_only), "{cp932_only}");
        }
    }

    #[test]
    fn bom_less_utf8_is_not_mistaken_for_shift_jis() {
        let text = "name,email1\n山田 花子,hanako@example.jp\n";
        assert_eq!(RosterReader::new(text.as_bytes()).unwrap().0.encoding(), UTF_8);
        let (_, rows) = read_all(text.as_bytes()).unwrap();
        assert_eq!(cells(&rows), [["山田 花子", "hanako@example.jp"]]);
    }

    #[test]
    fn the_fixture_has_header_columns_and_spreadsheet_line_numbers() {
        let (header, rows) = read_all(SJIS).unwrap();
        assert_eq!(header.columns[4], Column::Email(0));
        assert_eq!(header.columns[8], Column::Attribute("grade".into()));
        assert_eq!(rows.len(), 9);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[4].cell(5), "kenta sato@example.jp");
        assert_eq!(rows[8].line, 10);
        assert_eq!(rows[8].cell(0), "=HYPERLINK(\"http://x\")", "kept as text");
    }

    #[test]
    fn lines_are_the_files_lines_across_blank_lines_and_cells_of_several_lines() {
        let (_, rows) = read_all(b"name,relation\r\n\r\nA,\"two\r\nlines\"\r\nB,\r\n,\r\nC,x").unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 5, 7]);
        assert_eq!(rows[0].cell(1), "two\r\nlines");
        assert_eq!(rows[1].cell(1), "");
        assert_eq!(rows[2].cell(7), "", "past the row's end");
    }

    fn field_errors(text: &str) -> Vec<FieldError> {
        match read_all(text.as_bytes()) {
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
        assert_eq!(read_all(text.as_bytes()).unwrap().1.len(), MAX_ROWS);
        text.push_str("one too many\n");
        let last_line = MAX_ROWS as u64 + 3;
        assert_eq!(read_all(text.as_bytes()).unwrap_err(), DomainError::TooManyRows { line: last_line, max: MAX_ROWS });
    }

    /// The first error of a file that starts with `head` and goes on with a megabyte of
    /// rows that must never be read; asserts the reader stopped within the head.
    fn refused_without_reading_the_rest(head: &str) -> FieldError {
        let mut bytes = head.as_bytes().to_vec();
        let head_length = bytes.len();
        bytes.extend("a,b\n".repeat(256 * 1024).as_bytes());
        let (mut reader, _) = RosterReader::new(&bytes).unwrap();
        let error = loop {
            match reader.next_row() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("read to the end without an error"),
                Err(DomainError::Invalid(errors)) => break errors[0].clone(),
                Err(other) => panic!("{other:?}"),
            }
        };
        let Input::Utf8 { pos, .. } = reader.input else { panic!("UTF-8") };
        assert!(pos <= head_length, "read {pos} bytes, past the {head_length} of the head");
        error
    }

    #[test]
    fn a_header_of_too_many_columns_is_refused_at_the_first_column_too_many() {
        // Past the 20,000 names, a cell too long: reading on would report that instead.
        let names: Vec<String> = (0..20_000).map(|i| format!("c{i}")).collect();
        let header = format!("name,{},{}\n", names.join(","), "x".repeat(MAX_CELL_BYTES * 2));
        let errors = field_errors(&header);
        assert_eq!((errors[0].line, errors[0].field.as_str()), (Some(1), "header"));
        assert!(errors[0].message.contains(&format!("at most {MAX_COLUMNS} columns")), "{}", errors[0].message);
        // As many as allowed is fine.
        let widest = format!("name,{}\nx\n", names[..MAX_COLUMNS - 1].join(","));
        assert_eq!(read_all(widest.as_bytes()).unwrap().0.columns.len(), MAX_COLUMNS);
    }

    #[test]
    fn a_row_of_too_many_cells_or_a_cell_too_long_is_refused_where_it_is() {
        let wide_row = format!("name,grade\nA,1\nB,2{}\n", ",".repeat(100_000));
        let error = refused_without_reading_the_rest(&wide_row);
        assert_eq!((error.line, error.field.as_str()), (Some(3), "row"));

        let long_cell = format!("name,grade\nA,1\nB,\"{}", "x".repeat(MAX_CELL_BYTES * 10));
        let error = refused_without_reading_the_rest(&long_cell);
        assert_eq!((error.line, error.field.as_str()), (Some(3), "grade"));
        assert_eq!(error.message, format!("a cell holds at most {MAX_CELL_CHARS} characters"));

        // Counted in characters: 1,000 kanji (3,000 bytes) fit, 1,001 do not.
        let fits = format!("name\n{}\n", "漢".repeat(MAX_CELL_CHARS));
        assert_eq!(read_all(fits.as_bytes()).unwrap().1[0].cell(0).chars().count(), MAX_CELL_CHARS);
        let over = format!("name\n{}\n", "漢".repeat(MAX_CELL_CHARS + 1));
        assert_eq!(field_errors(&over)[0].field, "name");
    }

    #[test]
    fn shift_jis_that_does_not_decode_is_refused_at_its_line() {
        let mut bytes = b"name\r\nA\r\n".to_vec();
        bytes.extend(b"\x82\xa0\r\n\x82\r\n"); // あ, then half a character
        assert_eq!(RosterReader::new(&bytes).unwrap().0.encoding(), SHIFT_JIS);
        let error = match read_all(&bytes) {
            Err(DomainError::Invalid(errors)) => errors[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!((error.line, error.field.as_str()), (Some(4), "body"));
    }

    #[test]
    fn neutralised_cells_come_back_as_they_were() {
        for cell in ["=1+1", "+81 90", "-5", "@SUM(A1)", "plain", "'quoted"] {
            assert_eq!(restore(&neutralise(cell)), cell);
        }
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
    }

    /// Every error of the reader names a line and a field (the row limit names its line).
    fn check_errors_are_located(bytes: &[u8]) -> Result<(), TestCaseError> {
        match read_all(bytes) {
            Ok((header, rows)) => {
                for row in &rows {
                    prop_assert!(row.ends.len() <= header.columns.len());
                    prop_assert!((0..row.ends.len()).all(|i| row.cell(i).chars().count() <= MAX_CELL_CHARS));
                }
            }
            Err(DomainError::Invalid(errors)) => {
                prop_assert!(!errors.is_empty());
                for error in errors {
                    prop_assert!(error.line.is_some_and(|line| line >= 1), "{error:?}");
                    prop_assert!(!error.field.is_empty(), "{error:?}");
                    prop_assert!(!error.message.is_empty(), "{error:?}");
                }
            }
            Err(DomainError::TooManyRows { line, .. }) => prop_assert!(line > MAX_ROWS as u64),
            Err(other) => prop_assert!(false, "{other:?}"),
        }
        Ok(())
    }

    /// A cell as spreadsheets and hand-written files have them: quoted or not, with the
    /// separators, quotes, line breaks, formulas, BOMs and non-ASCII text that trip readers.
    fn weird_cell() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just(String::new()),
            "[a-z0-9@. ]{0,12}",
            "[\\u{3040}-\\u{30ff}\\u{4e00}-\\u{4e20}ｱ-ﾝ①髙﨑]{0,8}",
            Just("\"".to_string()),
            Just("\"\"".to_string()),
            Just(",".to_string()),
            Just("\r\n".to_string()),
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("'=1+1".to_string()),
            Just("\u{feff}".to_string()),
            Just("\t".to_string()),
            Just("\0".to_string()),
            "email[0-9]{1,2}",
        ];
        (proptest::collection::vec(piece, 0..4), any::<bool>()).prop_map(|(pieces, quoted)| {
            let text = pieces.concat();
            if quoted { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
        })
    }

    fn weird_file() -> impl Strategy<Value = Vec<u8>> {
        let header = proptest::collection::vec(
            prop_oneof![
                Just("name".to_string()),
                Just("email1".to_string()),
                Just("lists".to_string()),
                Just("external_id".to_string()),
                weird_cell()
            ],
            0..8,
        );
        let rows = proptest::collection::vec(proptest::collection::vec(weird_cell(), 0..10), 0..12);
        (header, rows, any::<bool>(), 0..3usize).prop_map(|(header, rows, crlf, encoding)| {
            let end = if crlf { "\r\n" } else { "\n" };
            let mut text = header.join(",");
            for row in rows {
                text.push_str(end);
                text.push_str(&row.join(","));
            }
            match encoding {
                0 => text.into_bytes(),
                1 => [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat(),
                _ => SHIFT_JIS.encode(&text).0.into_owned(),
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic_and_errors_are_located(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            check_errors_are_located(&bytes)?;
        }

        #[test]
        fn weird_but_well_formed_csv_never_panics_and_errors_are_located(bytes in weird_file()) {
            check_errors_are_located(&bytes)?;
        }

        #[test]
        fn plain_cells_come_back_as_written(rows in proptest::collection::vec(proptest::collection::vec("[a-zA-Z0-9あ-ん漢]{1,20}", 2), 1..20)) {
            let mut text = String::from("name,grade");
            for row in &rows {
                text.push_str(&format!("\r\n{},\"{}\"", row[0], row[1]));
            }
            let (_, read) = read_all(text.as_bytes()).unwrap();
            prop_assert_eq!(read.len(), rows.len());
            for (i, (row, written)) in read.iter().zip(&rows).enumerate() {
                prop_assert_eq!(row.line, i as u64 + 2);
                prop_assert_eq!(row.cell(0), written[0].as_str());
                prop_assert_eq!(row.cell(1), written[1].as_str());
            }
        }
    }
}
