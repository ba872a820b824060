//! Attached files as the domain sees them: the name a client gave, cleaned for display and
//! for every file system it may be saved to, and the content, recognised from its bytes
//! against an allowlist. The client's claims (name, declared type) only tell apart what the
//! bytes cannot.

use super::DomainError;

/// Characters of a stored file name.
pub const MAX_FILENAME_CHARS: usize = 200;

// ---------------------------------------------------------------------------------------
// File names

/// Invisible characters that can disguise a name (`exe.pdf` written right to left).
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// The last path component of what the client sent, without control and invisible
/// characters, with the characters Windows refuses in names replaced, without leading or
/// trailing dots and spaces, at most 200 characters (the extension kept). Japanese
/// (and any other) letters stay as they are. May be empty.
pub fn sanitize_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|&c| !c.is_control() && !invisible(c))
        .map(|c| if matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') { '_' } else { c })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c.is_whitespace() || c == '.');
    truncate_keeping_extension(trimmed, MAX_FILENAME_CHARS)
}

/// The extension of a name, lower-cased (`Report.PDF` → `pdf`).
fn extension(filename: &str) -> Option<String> {
    let (stem, ext) = filename.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty() && ext.chars().count() <= 10 && !ext.contains(' ')).then(|| ext.to_lowercase())
}

fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_string();
    }
    match name.rsplit_once('.').filter(|_| extension(name).is_some()) {
        Some((stem, ext)) => {
            let keep = max.saturating_sub(ext.chars().count() + 1);
            let stem: String = stem.chars().take(keep).collect();
            format!("{}.{ext}", stem.trim_end())
        }
        None => name.chars().take(max).collect(),
    }
}

/// The name to store: when its extension does not say what the content is, the right one
/// is appended (`scan` → `scan.pdf`, `page.html` holding a PNG → `page.html.png`), so that
/// the file opens as what it is wherever it is saved.
pub fn with_extension(filename: &str, kind: &Kind) -> String {
    let ext = extension(filename);
    if ext.as_deref().is_some_and(|e| kind.extensions.contains(&e)) {
        return filename.to_string();
    }
    let stem = if filename.is_empty() { "attachment" } else { filename };
    let wanted = kind.extensions[0];
    let stem = truncate_keeping_extension(stem, MAX_FILENAME_CHARS - wanted.len() - 1);
    format!("{stem}.{wanted}")
}

// ---------------------------------------------------------------------------------------
// Content sniffing

/// What the bytes of an upload are.
#[derive(Debug, PartialEq, Eq)]
pub struct Kind {
    /// Stored, sent as the MIME part's type, and answered on download.
    pub content_type: String,
    /// Extensions that name it, the usual one first.
    pub extensions: &'static [&'static str],
}

impl Kind {
    fn new(content_type: &str, extensions: &'static [&'static str]) -> Kind {
        Kind { content_type: content_type.to_string(), extensions }
    }
}

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";

const ACCEPTED: &str = "PDF, JPEG, PNG, GIF, HEIC, .txt or .csv text (UTF-8 or Shift_JIS), \
                        and Word, Excel or PowerPoint documents are accepted";

/// Recognises the content. `filename` (sanitised) and `declared` (the part's
/// `Content-Type`) only tell apart what the bytes alone cannot: text from CSV, and which
/// ZIP archives are meant as Office documents. `UnsupportedFile` says why the file is
/// refused.
pub fn sniff(bytes: &[u8], filename: &str, declared: Option<&str>) -> Result<Kind, DomainError> {
    recognise(bytes, filename, declared).map_err(DomainError::UnsupportedFile)
}

fn recognise(bytes: &[u8], filename: &str, declared: Option<&str>) -> Result<Kind, String> {
    let ext = extension(filename);
    let ext = ext.as_deref();
    if bytes.starts_with(b"%PDF-") {
        return Ok(Kind::new("application/pdf", &["pdf"]));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Kind::new("image/jpeg", &["jpg", "jpeg", "jpe", "jfif"]));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Kind::new("image/png", &["png"]));
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(Kind::new("image/gif", &["gif"]));
    }
    if infer::image::is_heif(bytes) {
        return Ok(Kind::new("image/heic", &["heic", "heif", "hif"]));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return office_open_xml(bytes, ext, declared);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        // OLE compound file: the root entry's class id names the application.
        return if infer::doc::is_doc(bytes) {
            Ok(Kind::new("application/msword", &["doc", "dot"]))
        } else if infer::doc::is_xls(bytes) {
            Ok(Kind::new("application/vnd.ms-excel", &["xls", "xlt"]))
        } else if infer::doc::is_ppt(bytes) {
            Ok(Kind::new("application/vnd.ms-powerpoint", &["ppt", "pps", "pot"]))
        } else {
            Err(format!("this compound file is not a Word, Excel or PowerPoint document; {ACCEPTED}"))
        };
    }
    match ext {
        Some("txt") => text(bytes, "text/plain", &["txt"]),
        Some("csv") => text(bytes, "text/csv", &["csv"]),
        _ => Err(match infer::get(bytes) {
            Some(found) => format!("{} files are not accepted; {ACCEPTED}", found.mime_type()),
            None => format!("the type of this file is not accepted; {ACCEPTED}"),
        }),
    }
}

/// Text in UTF-8 (with or without BOM) or Shift_JIS (Excel's "CSV" on Japanese Windows),
/// without control characters other than tab, line ends and form feed.
fn text(bytes: &[u8], mime: &str, extensions: &'static [&'static str]) -> Result<Kind, String> {
    let (decoded, charset) = match std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)) {
        Ok(text) => (std::borrow::Cow::Borrowed(text), "UTF-8"),
        Err(_) => match encoding_rs::SHIFT_JIS.decode_without_bom_handling_and_without_replacement(bytes) {
            Some(text) => (text, "Shift_JIS"),
            None => return Err("a .txt or .csv file must be text in UTF-8 or Shift_JIS".into()),
        },
    };
    if decoded.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{0C}')) {
        return Err("this is not a text file (it contains control characters); \
                    a .txt or .csv file must be text in UTF-8 or Shift_JIS"
            .into());
    }
    Ok(Kind::new(&format!("{mime}; charset={charset}"), extensions))
}

/// .docx, .xlsx and .pptx are ZIP archives: the archive must hold `[Content_Types].xml`
/// and the part folder of one application, its name or declared type must say which,
/// and it must carry no macros.
fn office_open_xml(bytes: &[u8], ext: Option<&str>, declared: Option<&str>) -> Result<Kind, String> {
    let refused = || format!("a ZIP archive is accepted only as a Word, Excel or PowerPoint document; {ACCEPTED}");
    let names = zip_entry_names(bytes).ok_or_else(refused)?;
    if names.iter().any(|n| n.to_ascii_lowercase().ends_with(b"vbaproject.bin")) {
        return Err(
            "Office documents with macros are not accepted; save it as .docx, .xlsx or .pptx without macros".into()
        );
    }
    if !names.iter().any(|n| *n == b"[Content_Types].xml") {
        return Err(refused());
    }
    let has = |folder: &[u8]| names.iter().any(|n| n.starts_with(folder));
    let (mime, extensions): (&str, &'static [&'static str]) = if has(b"word/") {
        (DOCX, &["docx"])
    } else if has(b"xl/") {
        (XLSX, &["xlsx"])
    } else if has(b"ppt/") {
        (PPTX, &["pptx"])
    } else {
        return Err(refused());
    };
    let named = ext.is_some_and(|e| extensions.contains(&e)) || declared == Some(mime);
    if !named {
        return Err(format!(
            "this ZIP archive is accepted as a .{} document only under that name or type; {ACCEPTED}",
            extensions[0]
        ));
    }
    Ok(Kind::new(mime, extensions))
}

/// The entry names of a ZIP archive, from its central directory; `None` when that cannot
/// be read (truncated, ZIP64, or not a ZIP archive at all).
fn zip_entry_names(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    // The end-of-central-directory record: 22 bytes and a comment of up to 65,535.
    let search_from = bytes.len().saturating_sub(22 + 65_535);
    let eocd = search_from + bytes[search_from..].windows(4).rposition(|w| w == b"PK\x05\x06")?;
    let entries = u16_at(eocd + 10)?;
    let mut at = u32_at(eocd + 16)?;
    if entries == 0xFFFF || at == 0xFFFF_FFFF {
        return None;
    }
    let mut names = Vec::with_capacity(entries);
    for _ in 0..entries {
        if bytes.get(at..at + 4)? != b"PK\x01\x02" {
            return None;
        }
        let (name_len, extra_len, comment_len) = (u16_at(at + 28)?, u16_at(at + 30)?, u16_at(at + 32)?);
        names.push(bytes.get(at + 46..at + 46 + name_len)?);
        at += 46 + name_len + extra_len + comment_len;
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ZIP archive of empty stored entries, as the sniffer needs it (no CRCs checked).
    pub fn zip(names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for name in names {
            let offset = out.len() as u32;
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let central_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(names.len() as u16).to_le_bytes());
        out.extend_from_slice(&(names.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&central_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    /// A minimal OLE compound file (version 3: header, one FAT sector, one directory
    /// sector) whose root entry carries `clsid` (the GUID's bytes as stored, little-endian).
    fn compound_file(clsid: [u8; 16]) -> Vec<u8> {
        let mut file = vec![0u8; 512 * 3];
        file[..8].copy_from_slice(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
        let put16 = |file: &mut Vec<u8>, at: usize, v: u16| file[at..at + 2].copy_from_slice(&v.to_le_bytes());
        let put32 = |file: &mut Vec<u8>, at: usize, v: u32| file[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put16(&mut file, 24, 0x003E);
        put16(&mut file, 26, 3);
        put16(&mut file, 28, 0xFFFE);
        put16(&mut file, 30, 9);
        put16(&mut file, 32, 6);
        put32(&mut file, 44, 1); // FAT sectors
        put32(&mut file, 48, 1); // first directory sector
        put32(&mut file, 56, 0x1000);
        put32(&mut file, 60, 0xFFFF_FFFE);
        put32(&mut file, 68, 0xFFFF_FFFE);
        put32(&mut file, 76, 0); // the FAT is sector 0
        for i in 1..109 {
            put32(&mut file, 76 + 4 * i, 0xFFFF_FFFF);
        }
        let fat = 512;
        put32(&mut file, fat, 0xFFFF_FFFD);
        put32(&mut file, fat + 4, 0xFFFF_FFFE);
        for i in 2..128 {
            put32(&mut file, fat + 4 * i, 0xFFFF_FFFF);
        }
        let dir = 1024;
        for (i, unit) in "Root Entry".encode_utf16().enumerate() {
            put16(&mut file, dir + 2 * i, unit);
        }
        put16(&mut file, dir + 64, 22);
        file[dir + 66] = 5; // root storage
        file[dir + 67] = 1; // black
        for at in [68, 72, 76] {
            put32(&mut file, dir + at, 0xFFFF_FFFF);
        }
        file[dir + 80..dir + 96].copy_from_slice(&clsid);
        put32(&mut file, dir + 116, 0xFFFF_FFFE);
        for entry in 1..4 {
            for at in [68, 72, 76] {
                put32(&mut file, dir + 128 * entry + at, 0xFFFF_FFFF);
            }
        }
        file
    }

    fn content_type(bytes: &[u8], filename: &str) -> Result<String, String> {
        sniff(bytes, filename, None).map(|k| k.content_type).map_err(|e| e.to_string())
    }

    #[test]
    fn the_allowlisted_types_are_recognised_from_their_bytes() {
        assert_eq!(content_type(b"%PDF-1.7\n...", "x").unwrap(), "application/pdf");
        assert_eq!(content_type(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10], "x").unwrap(), "image/jpeg");
        assert_eq!(content_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "x").unwrap(), "image/png");
        assert_eq!(content_type(b"GIF89a\x01\0\x01\0", "x").unwrap(), "image/gif");
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\0";
        assert_eq!(content_type(heic, "IMG_0001.HEIC").unwrap(), "image/heic");
        // What the client calls it does not matter for these.
        assert_eq!(content_type(b"%PDF-1.4", "photo.jpg").unwrap(), "application/pdf");
    }

    #[test]
    fn legacy_office_documents_are_told_apart_by_their_class_id() {
        let word = [0x06, 0x09, 0x02, 0, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46];
        let excel = [0x20, 0x08, 0x02, 0, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46];
        let powerpoint = [0x10, 0x8D, 0x81, 0x64, 0x9B, 0x4F, 0xCF, 0x11, 0x86, 0xEA, 0, 0xAA, 0, 0xB9, 0x29, 0xE8];
        assert_eq!(content_type(&compound_file(word), "a.doc").unwrap(), "application/msword");
        assert_eq!(content_type(&compound_file(excel), "a.xls").unwrap(), "application/vnd.ms-excel");
        assert_eq!(content_type(&compound_file(powerpoint), "a.ppt").unwrap(), "application/vnd.ms-powerpoint");
        // An installer is a compound file too.
        assert!(content_type(&compound_file([7; 16]), "setup.doc").is_err());
    }

    #[test]
    fn office_open_xml_needs_its_parts_and_its_name() {
        let docx = zip(&["[Content_Types].xml", "_rels/.rels", "word/document.xml"]);
        assert_eq!(content_type(&docx, "お知らせ.docx").unwrap(), DOCX);
        assert_eq!(sniff(&docx, "upload", Some(DOCX)).unwrap().content_type, DOCX);
        let xlsx = zip(&["[Content_Types].xml", "xl/workbook.xml"]);
        assert_eq!(content_type(&xlsx, "名簿.XLSX").unwrap(), XLSX);
        let pptx = zip(&["[Content_Types].xml", "ppt/presentation.xml"]);
        assert_eq!(content_type(&pptx, "slides.pptx").unwrap(), PPTX);
        assert!(content_type(&docx, "archive.zip").is_err(), "a document under another name");
        assert!(content_type(&docx, "table.xlsx").is_err(), "a Word document named as a workbook");
        assert!(content_type(&zip(&["setup.exe"]), "setup.docx").is_err(), "a plain ZIP renamed");
        let macros = zip(&["[Content_Types].xml", "word/document.xml", "word/vbaProject.bin"]);
        assert!(content_type(&macros, "letter.docx").unwrap_err().contains("macros"));
        assert!(content_type(b"PK\x03\x04broken", "a.docx").is_err());
    }

    #[test]
    fn text_is_utf8_or_shift_jis_under_a_text_name() {
        assert_eq!(content_type("持ち物: 弁当\r\n".as_bytes(), "memo.txt").unwrap(), "text/plain; charset=UTF-8");
        assert_eq!(content_type("\u{FEFF}名前,学年\n".as_bytes(), "list.csv").unwrap(), "text/csv; charset=UTF-8");
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("名前,学年\r\n山田,1\r\n");
        assert_eq!(content_type(&sjis, "名簿.csv").unwrap(), "text/csv; charset=Shift_JIS");
        assert!(content_type(b"hello", "hello.html").is_err(), "text under another name");
        assert!(content_type(b"MZ\x90\0\x03\0\0\0", "run.txt").is_err(), "binary under a text name");
        assert!(content_type(&[0x82, 0xA0, 0xFF, 0xFF], "bad.txt").is_err(), "neither encoding");
        assert!(content_type(b"MZ\x90\0\x03\0", "tool.exe").is_err());
    }

    #[test]
    fn names_are_sanitised_but_japanese_stays() {
        assert_eq!(sanitize_filename("お便り_10月号.pdf"), "お便り_10月号.pdf");
        assert_eq!(sanitize_filename("C:\\Users\\先生\\Desktop\\遠足.pdf"), "遠足.pdf");
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("a\u{0}b\r\nc\u{7F}.txt"), "abc.txt");
        assert_eq!(sanitize_filename("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(sanitize_filename("what?<now>:*|\".txt"), "what__now_____.txt");
        assert_eq!(sanitize_filename("  ..hidden.  "), "hidden");
        assert_eq!(sanitize_filename("/"), "");
        let long = format!("{}.pdf", "長".repeat(300));
        let cut = sanitize_filename(&long);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with("長.pdf"));
        let pdf = Kind::new("application/pdf", &["pdf"]);
        assert_eq!(with_extension("scan", &pdf), "scan.pdf");
        assert_eq!(with_extension("", &pdf), "attachment.pdf");
        assert_eq!(with_extension("page.html", &pdf), "page.html.pdf");
        assert_eq!(with_extension("REPORT.PDF", &pdf), "REPORT.PDF");
        assert_eq!(with_extension(&cut.replace(".pdf", ".txt"), &pdf).chars().count(), 200);
    }
}
