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
use crate::api::problem_responses::{Forbidden, NotFound};
use crate::api::time;
use crate::auth::Caller;
use crate::db::repositories::attachments::{self, AttachmentRow, NewAttachment};
use crate::domain::Scope;
use crate::domain::attachment::{sanitize_filename, sniff, with_extension};
use crate::domain::message::MessageStatus;
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(upload_attachment).service(list_attachments).service(download_attachment).service(delete_attachment);
}

/// The attachments of one message may total this many bytes.
pub const MAX_TOTAL_BYTES: usize = 1_048_576;
/// … in at most this many files.
pub const MAX_FILES: i64 = 5;
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

/// The status of the message, in the caller's organisation.
async fn find_message(conn: &mut sqlx::AnyConnection, caller: &Caller, id: &str) -> ApiResult<MessageStatus> {
    let message = crate::api::messages::find(conn, caller, id).await?;
    Ok(message.status)
}

/// The bytes the message's attachments take, as their stored sizes add up; below zero,
/// a size is corrupt (a 500, logged) rather than nothing used.
fn used_bytes(message_id: &str, total: i64) -> ApiResult<usize> {
    usize::try_from(total).map_err(|_| {
        ApiError::Internal(anyhow::anyhow!("the attachments of message {message_id} add up to {total} bytes"))
    })
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

/// The part named `file`, read while counting: the upload stops at the first byte past
/// what the message has left, however large the client says the file is.
struct Upload {
    filename: Option<String>,
    declared: Option<String>,
    bytes: Vec<u8>,
}

async fn read_upload(req: &HttpRequest, payload: web::Payload, used: usize) -> ApiResult<Upload> {
    if !req.content_type().eq_ignore_ascii_case("multipart/form-data") {
        return Err(ApiError::UnsupportedMediaType {
            detail: "send the file as multipart/form-data in the field `file`".into(),
            field: "Content-Type".into(),
        });
    }
    let budget = MAX_TOTAL_BYTES.saturating_sub(used);
    let declared_length =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared_length.is_some_and(|n| n > budget + MULTIPART_OVERHEAD) {
        return Err(too_large(used));
    }
    let malformed = |e: actix_multipart::MultipartError| match e {
        actix_multipart::MultipartError::Payload(e) => crate::request_body::read_error(&e),
        e => ApiError::BadRequest {
            detail: format!("the multipart body could not be read: {e}"),
            field: Some("body".into()),
        },
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
    responses(
    (status = 201, body = AttachmentResponse),
    (status = 400, description = "Not a readable multipart body", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The message was sent or cancelled: `status`", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "The message's attachments would exceed 1,048,576 bytes: `file`; nothing is stored", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not multipart (`Content-Type`), or a file type that is not accepted (`file`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No `file` field, an empty file, or a sixth file: `file`", body = Problem, content_type = "application/problem+json"),
    Forbidden, NotFound,
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
        used_bytes(&id, bytes)?
    };
    let upload = read_upload(&req, payload, used).await?;
    if upload.bytes.is_empty() {
        return Err(ApiError::field("file", "is empty"));
    }
    let filename = sanitize_filename(upload.filename.as_deref().unwrap_or_default());
    let kind = sniff(&upload.bytes, &filename, upload.declared.as_deref())?;
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
    let used = used_bytes(&id, bytes)?;
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
#[utoipa::path(tag = "messages", params(("id" = String, Path)), responses(
    (status = 200, body = Page<AttachmentResponse>),
    Forbidden, NotFound,
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

/// The 200 of every download of an attachment (staff, the app, the personal link): the
/// file's bytes as the type recognised at upload (`domain::attachment::sniff`).
pub struct AttachmentFile;

impl utoipa::IntoResponses for AttachmentFile {
    fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
        use utoipa::openapi::{ContentBuilder, ObjectBuilder, ResponseBuilder, Type};
        let bytes = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .build();
        let types = [
            "application/pdf",
            "image/jpeg",
            "image/png",
            "image/gif",
            "image/heic",
            "text/plain",
            "text/csv",
            "application/octet-stream",
        ];
        let response = types.into_iter().fold(
            ResponseBuilder::new()
                .description("The file, as `Content-Disposition: attachment` with its name (RFC 6266)"),
            |response, content_type| {
                response.content(content_type, ContentBuilder::new().schema(Some(bytes.clone())).build())
            },
        );
        std::collections::BTreeMap::from([("200".to_string(), utoipa::openapi::RefOr::T(response.build()))])
    }
}

/// Download one attachment: its bytes, with the type recognised at upload.
#[utoipa::path(tag = "messages", params(("id" = String, Path), ("attachment_id" = String, Path)), responses(
    AttachmentFile,
    Forbidden, NotFound,
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
#[utoipa::path(tag = "messages", params(("id" = String, Path), ("attachment_id" = String, Path)), responses(
    (status = 204, description = "Deleted"),
    (status = 409, description = "The message was sent or cancelled: `status`", body = Problem, content_type = "application/problem+json"),
    Forbidden, NotFound,
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

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;

    use super::*;

    #[test]
    fn stored_sizes_that_add_up_below_zero_are_a_500_not_room() {
        assert_eq!(used_bytes("m1", 0).unwrap(), 0);
        assert_eq!(used_bytes("m1", 1_048_576).unwrap(), 1_048_576);
        let corrupt = used_bytes("m1", -5).unwrap_err();
        assert_eq!(corrupt.status_code().as_u16(), 500);
        assert!(corrupt.to_string().contains("add up to -5 bytes"), "{corrupt}");
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
