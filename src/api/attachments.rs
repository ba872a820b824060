//! Attachments (添付ファイル) of a message: multipart upload, list, download, delete.
//!
//! A message carries at most five files and 1 MiB (1,048,576 bytes) in total. The type of
//! a file is sniffed from its bytes, never taken from the client, and must be on the
//! allowlist below; the name the client gave is kept for display and mail, sanitised.

use actix_multipart::Multipart;
use actix_web::http::header::{self, ContentDisposition};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::pagination::Page;
use crate::api::time;
use crate::auth::Caller;
use crate::db::repositories::attachments::{self, AttachmentRow, NewAttachment};
use crate::db::repositories::messages;
use crate::domain::message::MessageStatus;
use crate::domain::{FieldError, Scope};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(upload_attachment).service(list_attachments).service(download_attachment).service(delete_attachment);
}

/// The attachments of one message may total this many bytes.
pub const MAX_TOTAL_BYTES: usize = 1_048_576;
/// … in at most this many files.
pub const MAX_FILES: i64 = 5;
/// Characters of a stored file name.
pub const MAX_FILENAME_CHARS: usize = 200;
/// Room for the multipart framing (boundaries, part headers) around the file when a
/// declared `Content-Length` is compared with what the message has left.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The multipart form of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AttachmentUpload {
    /// The file: PDF, JPEG, PNG, GIF, HEIC, plain text or CSV (.txt/.csv in UTF-8 or
    /// Shift_JIS), Word, Excel or PowerPoint (.docx/.xlsx/.pptx, or 97-2003 .doc/.xls/.ppt).
    /// The type is recognised from the content; the name is kept (sanitised, at most 200
    /// characters).
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    pub file: Vec<u8>,
}

#[derive(Serialize, ToSchema)]
pub struct AttachmentResponse {
    pub id: String,
    #[schema(example = "お便り_10月号.pdf")]
    pub filename: String,
    /// As recognised from the content.
    #[schema(example = "application/pdf")]
    pub content_type: String,
    /// Bytes.
    #[schema(example = 183_204)]
    pub size: i64,
    pub created_at: DateTime<Utc>,
}

impl From<AttachmentRow> for AttachmentResponse {
    fn from(row: AttachmentRow) -> AttachmentResponse {
        AttachmentResponse {
            id: row.id,
            filename: row.filename,
            content_type: row.content_type,
            size: row.size,
            created_at: time(row.created_at),
        }
    }
}

/// The message, in the caller's organisation.
async fn find_message(conn: &mut sqlx::AnyConnection, caller: &Caller, id: &str) -> ApiResult<MessageStatus> {
    let message = messages::find(conn, &caller.org_id, id).await?.ok_or_else(|| ApiError::not_found("message"))?;
    Ok(MessageStatus::parse(&message.status).unwrap_or(MessageStatus::Draft))
}

fn frozen(status: MessageStatus) -> ApiError {
    ApiError::Conflict {
        detail: format!("attachments change only while the message is a draft or scheduled; it is {}", status.as_str()),
        field: Some("status".into()),
    }
}

fn editable(status: MessageStatus) -> ApiResult<()> {
    match status {
        MessageStatus::Draft | MessageStatus::Scheduled => Ok(()),
        other => Err(frozen(other)),
    }
}

fn too_many() -> ApiError {
    ApiError::field("file", format!("a message carries at most {MAX_FILES} files; delete one first"))
}

fn too_large(used: usize) -> ApiError {
    let detail = if used == 0 {
        format!("the attachments of a message may total {MAX_TOTAL_BYTES} bytes (1 MiB)")
    } else {
        format!(
            "the attachments of a message may total {MAX_TOTAL_BYTES} bytes (1 MiB); {} of them are left",
            MAX_TOTAL_BYTES.saturating_sub(used)
        )
    };
    ApiError::PayloadTooLarge { detail, field: "file".into() }
}

/// A 415 problem naming the `file` field (the shared `UnsupportedMediaType` names the
/// request's `Content-Type`, which is right for a body that is not multipart at all).
fn unsupported_file(detail: String) -> HttpResponse {
    let problem = Problem {
        r#type: "urn:renrakumo:problem:unsupported-media-type".into(),
        title: "Unsupported Media Type".into(),
        status: 415,
        errors: vec![FieldError::new("file", detail.clone())],
        detail,
        error: None,
    };
    HttpResponse::UnsupportedMediaType()
        .insert_header((header::CONTENT_TYPE, PROBLEM_JSON))
        .body(serde_json::to_string(&problem).unwrap_or_default())
}

/// The part named `file`, read while counting: the upload stops at the first byte past
/// what the message has left, however large the client says the file is.
struct Upload {
    filename: Option<String>,
    declared: Option<String>,
    bytes: Vec<u8>,
}

async fn read_upload(req: &HttpRequest, payload: web::Payload, used: usize) -> ApiResult<Upload> {
    if !req.content_type().eq_ignore_ascii_case("multipart/form-data") {
        return Err(ApiError::UnsupportedMediaType("send the file as multipart/form-data in the field `file`".into()));
    }
    let budget = MAX_TOTAL_BYTES.saturating_sub(used);
    let declared_length =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared_length.is_some_and(|n| n > budget + MULTIPART_OVERHEAD) {
        return Err(too_large(used));
    }
    let malformed = |e: actix_multipart::MultipartError| ApiError::BadRequest {
        detail: format!("the multipart body could not be read: {e}"),
        field: Some("body".into()),
    };
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut upload: Option<Upload> = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(malformed)?;
        let name = field.name().unwrap_or_default().to_string();
        if name != "file" {
            return Err(ApiError::field(name, "is not a known field; send the file in the field `file`"));
        }
        if upload.is_some() {
            return Err(ApiError::field("file", "send one file per request"));
        }
        let filename = client_filename(field.content_disposition());
        let declared = field.content_type().map(|m| m.essence_str().to_ascii_lowercase());
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(malformed)?;
            if bytes.len() + chunk.len() > budget {
                return Err(too_large(used));
            }
            bytes.extend_from_slice(&chunk);
        }
        upload = Some(Upload { filename, declared, bytes });
    }
    upload.ok_or_else(|| ApiError::field("file", "is required: send the file in the multipart field `file`"))
}

/// `filename*` (RFC 5987) when the client sent it in UTF-8, else `filename` (browsers send
/// UTF-8 there as it is).
fn client_filename(disposition: Option<&ContentDisposition>) -> Option<String> {
    let disposition = disposition?;
    if let Some(extended) = disposition.get_filename_ext()
        && extended.charset.to_string().eq_ignore_ascii_case("utf-8")
        && let Ok(name) = String::from_utf8(extended.value.clone())
    {
        return Some(name);
    }
    disposition.get_filename().map(str::to_string)
}

/// Upload a file (添付ファイル) to a draft or scheduled message.
///
/// At most 5 files and 1,048,576 bytes (1 MiB) in total per message; the type is
/// recognised from the content and must be one of PDF, JPEG, PNG, GIF, HEIC, plain text or
/// CSV (.txt/.csv, UTF-8 or Shift_JIS), or a Word, Excel or PowerPoint document.
#[utoipa::path(tag = "messages", params(("id" = String, Path)),
    request_body(content = inline(AttachmentUpload), content_type = "multipart/form-data"),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 201, body = AttachmentResponse),
    (status = 400, description = "Not a readable multipart body", body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The message was sent or cancelled: `status`", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "The message's attachments would exceed 1,048,576 bytes: `file`; nothing is stored", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not multipart (`Content-Type`), or a file type that is not accepted (`file`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No `file` field, an empty file, or a sixth file: `file`", body = Problem, content_type = "application/problem+json"),
))]
#[post("/messages/{id}/attachments")]
pub async fn upload_attachment(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MessagesSend)?;
    // Refuse what can be refused before reading the body, and learn how much room is left;
    // no connection is held while the file arrives.
    let used = {
        let mut conn = state.db.pool.acquire().await?;
        editable(find_message(&mut conn, &caller, &id).await?)?;
        let (count, bytes) = attachments::totals(&mut conn, &id).await?;
        if count >= MAX_FILES {
            return Err(too_many());
        }
        bytes.max(0) as usize
    };
    let upload = read_upload(&req, payload, used).await?;
    if upload.bytes.is_empty() {
        return Err(ApiError::field("file", "is empty"));
    }
    let filename = sanitize_filename(upload.filename.as_deref().unwrap_or_default());
    let kind = match sniff(&upload.bytes, &filename, upload.declared.as_deref()) {
        Ok(kind) => kind,
        Err(detail) => return Ok(unsupported_file(detail)),
    };
    let filename = with_extension(&filename, &kind);

    let mut tx = state.db.begin().await?;
    // Checked again under the message's lock: other uploads or a send may have come first.
    if !attachments::lock_editable(&mut tx, &caller.org_id, &id).await? {
        return Err(frozen(find_message(&mut tx, &caller, &id).await?));
    }
    let (count, bytes) = attachments::totals(&mut tx, &id).await?;
    if count >= MAX_FILES {
        return Err(too_many());
    }
    let used = bytes.max(0) as usize;
    if used + upload.bytes.len() > MAX_TOTAL_BYTES {
        return Err(too_large(used));
    }
    let new = NewAttachment { filename: &filename, content_type: &kind.content_type, content: &upload.bytes };
    let row = attachments::insert(&mut tx, &caller.org_id, &id, &new).await?;
    tx.commit().await?;
    tracing::info!(message_id = %id, attachment_id = %row.id, content_type = %row.content_type, size = row.size, "attachment stored");
    Ok(HttpResponse::Created().json(AttachmentResponse::from(row)))
}

/// The attachments of a message, oldest first (at most 5: one page).
#[utoipa::path(tag = "messages", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, body = Page<AttachmentResponse>),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
#[get("/messages/{id}/attachments")]
pub async fn list_attachments(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Page<AttachmentResponse>>> {
    caller.require(Scope::MessagesRead)?;
    let mut conn = state.db.pool.acquire().await?;
    find_message(&mut conn, &caller, &id).await?;
    let rows = attachments::attachments(&mut conn, &id).await?;
    Ok(web::Json(Page { items: rows.into_iter().map(AttachmentResponse::from).collect(), next_cursor: None }))
}

/// RFC 5987 `attr-char`: everything else is percent-encoded in `filename*`.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="ascii fallback"; filename*=UTF-8''…` (RFC 6266 with RFC 5987):
/// clients that read `filename*` get the name as stored, Japanese included.
pub fn content_disposition(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | '%') { c } else { '_' })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{}", utf8_percent_encode(filename, ATTR_CHAR))
}

/// Download one attachment: its bytes, with the type recognised at upload.
#[utoipa::path(tag = "messages", params(("id" = String, Path), ("attachment_id" = String, Path)),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, description = "The file, as `Content-Disposition: attachment` with its name (RFC 6266)",
        content(
            (Vec<u8> = "application/pdf"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "image/gif"),
            (Vec<u8> = "image/heic"), (Vec<u8> = "text/plain"), (Vec<u8> = "text/csv"), (Vec<u8> = "application/octet-stream"),
        )),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
#[get("/messages/{id}/attachments/{attachment_id}")]
pub async fn download_attachment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MessagesRead)?;
    let (id, attachment_id) = path.into_inner();
    let mut conn = state.db.pool.acquire().await?;
    find_message(&mut conn, &caller, &id).await?;
    download(&mut conn, &caller.org_id, &id, &attachment_id).await
}

/// The file as a download; shared by staff, the personal link and the guardian app.
pub async fn download(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    message_id: &str,
    attachment_id: &str,
) -> ApiResult<HttpResponse> {
    let file = attachments::find_content(conn, org_id, message_id, attachment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("attachment"))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, file.content_type.as_str()))
        .insert_header((header::CONTENT_DISPOSITION, content_disposition(&file.filename)))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Should a browser show it after all, it runs nothing and loads nothing.
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox"))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .body(file.content))
}

/// Remove an attachment from a draft or scheduled message.
#[utoipa::path(tag = "messages", params(("id" = String, Path), ("attachment_id" = String, Path)),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The message was sent or cancelled: `status`", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/messages/{id}/attachments/{attachment_id}")]
pub async fn delete_attachment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MessagesSend)?;
    let (id, attachment_id) = path.into_inner();
    let mut tx = state.db.begin().await?;
    let status = find_message(&mut tx, &caller, &id).await?;
    if !attachments::lock_editable(&mut tx, &caller.org_id, &id).await? {
        return Err(frozen(status));
    }
    if !attachments::delete(&mut tx, &caller.org_id, &id, &attachment_id).await? {
        return Err(ApiError::not_found("attachment"));
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

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
fn with_extension(filename: &str, kind: &Kind) -> String {
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
/// ZIP archives are meant as Office documents. `Err` says why the file is refused.
pub fn sniff(bytes: &[u8], filename: &str, declared: Option<&str>) -> Result<Kind, String> {
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
        sniff(bytes, filename, None).map(|k| k.content_type)
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

    #[test]
    fn the_download_name_is_encoded_for_every_client() {
        assert_eq!(
            content_disposition("お便り 10月.pdf"),
            "attachment; filename=\"___ 10_.pdf\"; filename*=UTF-8''%E3%81%8A%E4%BE%BF%E3%82%8A%2010%E6%9C%88.pdf"
        );
        assert_eq!(
            content_disposition("a\"b%.txt"),
            "attachment; filename=\"a_b_.txt\"; filename*=UTF-8''a%22b%25.txt"
        );
    }
}
