//! Keyset pagination: `limit` and an opaque `cursor`, answered as `{items, next_cursor}`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 200; 50 when absent.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page position that was checked: the id to continue after and how many to return.
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: u32,
}

impl PageQuery {
    pub fn parse(&self) -> ApiResult<PageRequest> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let after = match &self.cursor {
            None => None,
            Some(cursor) => Some(
                URL_SAFE_NO_PAD
                    .decode(cursor)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|s| s.strip_prefix("v1:").map(str::to_string))
                    .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API returned"))?,
            ),
        };
        Ok(PageRequest { after, limit })
    }
}

impl PageRequest {
    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit as i64 + 1
    }

    /// Cuts the extra row off and makes the cursor from the last row kept.
    pub fn page<R, T>(&self, mut rows: Vec<R>, key: impl Fn(&R) -> &str, map: impl Fn(R) -> T) -> Page<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor =
            if more { rows.last().map(|r| URL_SAFE_NO_PAD.encode(format!("v1:{}", key(r)))) } else { None };
        Page { items: rows.into_iter().map(map).collect(), next_cursor }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
