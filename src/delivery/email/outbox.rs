//! The outbox: without an SMTP relay configured, each e-mail is written as an `.eml` file
//! (the RFC 5322 bytes exactly as they would be sent) into one folder, for development and
//! for installs that hand the files to another mail system.

use std::path::Path;

use super::SendOutcome;

/// Writes `bytes` as the message's file in `dir`, creating the folder when needed. A failure
/// to write is transient: the job is retried, perhaps after the disk or permissions are fixed.
pub(super) async fn write(dir: &Path, message_id: &str, bytes: Vec<u8>) -> SendOutcome {
    let dir = dir.to_path_buf();
    let name = file_name(message_id);
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        // Write then rename, so whoever watches the folder never reads half a message.
        let partial = dir.join(format!(".{name}.partial"));
        std::fs::write(&partial, &bytes)?;
        std::fs::rename(&partial, dir.join(&name))
    })
    .await;
    match written {
        Ok(Ok(())) => SendOutcome::Delivered,
        Ok(Err(e)) => SendOutcome::Transient(format!("outbox: {e}")),
        Err(e) => SendOutcome::Transient(format!("outbox: {e}")),
    }
}

/// `<msg>.<recipient>.1@renrakumo` → `msg.recipient.1_renrakumo`: only `[A-Za-z0-9._-]`, so
/// the id cannot climb out of the folder. The same id overwrites the same file, which keeps
/// an at-least-once resend from leaving a second copy.
fn file_name(message_id: &str) -> String {
    let bare = message_id.trim().trim_start_matches('<').trim_end_matches('>');
    let mut name: String = bare
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' })
        .take(200)
        .collect();
    let name_without_dots = name.trim_start_matches('.');
    if name_without_dots.is_empty() {
        name = "message".into();
    } else if name_without_dots.len() != name.len() {
        name = name_without_dots.to_string();
    }
    format!("{name}.eml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_file_names_keep_only_safe_characters() {
        assert_eq!(file_name("<m1.r1.1@renrakumo>"), "m1.r1.1_renrakumo.eml");
        assert_eq!(file_name("../../etc/passwd"), "_.._etc_passwd.eml");
        assert_eq!(file_name("<>"), "message.eml");
        assert_eq!(file_name("山田/x"), "___x.eml");
        assert!(file_name(&"a".repeat(500)).len() <= 204);
    }
}
