//! Times as guardians read them: Japan Standard Time (UTC+9, no daylight saving), written
//! the Japanese way. The API itself answers RFC 3339 UTC; this is for pages and e-mails.

use chrono::{DateTime, FixedOffset, Utc};

/// UTC+9 all year round.
const JST: FixedOffset = match FixedOffset::east_opt(9 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+9 is a valid offset"),
};

/// `2026年12月08日 00:30`: zero-padded, 24-hour, in JST (the guardian's page and the
/// answer deadline in message e-mails).
pub fn format_datetime(at: DateTime<Utc>) -> String {
    at.with_timezone(&JST).format("%Y年%m月%d日 %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn utc_evening_is_the_next_morning_in_japan() {
        assert_eq!(format_datetime(utc("2026-12-07T15:30:00Z")), "2026年12月08日 00:30");
        assert_eq!(format_datetime(utc("2026-12-31T14:59:59Z")), "2026年12月31日 23:59");
        assert_eq!(format_datetime(utc("2026-12-31T15:00:00Z")), "2027年01月01日 00:00");
    }

    #[test]
    fn months_days_and_hours_are_zero_padded_and_seconds_left_out() {
        assert_eq!(format_datetime(utc("2027-03-04T00:05:59Z")), "2027年03月04日 09:05");
    }

    #[test]
    fn the_epoch_is_nine_in_the_morning() {
        assert_eq!(format_datetime(DateTime::UNIX_EPOCH), "1970年01月01日 09:00");
    }
}
