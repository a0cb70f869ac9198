//! `GET /admin/audit?from=&to=&recording=&cursor=&limit=`: the audit trail, oldest first,
//! one bounded page at a time (keyset cursor on `seq`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate};
use serde::Deserialize;

use super::operations::{self as ops, OpsError};
use crate::audit::{self, AuditQuery};
use crate::http_error::ApiError;
use crate::state::AppState;

/// The query string, every field optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailQuery {
    /// RFC 3339 time or `YYYY-MM-DD` (UTC midnight): records at or after it.
    from: Option<String>,
    /// Same forms: records before it.
    to: Option<String>,
    /// A recording's row id, or its `callId/recordingKey`.
    recording: Option<String>,
    /// A previous page's `next_cursor`.
    cursor: Option<String>,
    limit: Option<i64>,
}

/// At most this many characters of a filter value.
const MAX_FILTER: usize = 1024;

/// Milliseconds of an RFC 3339 time or a `YYYY-MM-DD` day.
fn parse_time(field: &str, raw: &str) -> Result<i64, OpsError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(day
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    Err(OpsError::invalid(
        "invalid_time",
        format!("{field} must be an RFC 3339 time (2026-12-03T09:00:00Z) or a day (2026-12-03)"),
    ))
}

impl TrailQuery {
    fn parse(&self) -> Result<AuditQuery, OpsError> {
        let too_long = [&self.from, &self.to, &self.recording, &self.cursor]
            .into_iter()
            .flatten()
            .any(|value| value.len() > MAX_FILTER);
        if too_long {
            return Err(OpsError::invalid(
                "invalid_query",
                format!("a filter value is longer than {MAX_FILTER} characters"),
            ));
        }
        let nonempty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let from = nonempty(&self.from)
            .map(|raw| parse_time("from", &raw))
            .transpose()?;
        let to = nonempty(&self.to)
            .map(|raw| parse_time("to", &raw))
            .transpose()?;
        let (recording_id, recording_key) = match nonempty(&self.recording) {
            Some(raw) => match raw.parse::<i64>() {
                Ok(id) => (Some(id), None),
                Err(_) => (None, Some(raw)),
            },
            None => (None, None),
        };
        let after = match nonempty(&self.cursor) {
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq >= 0)
                .ok_or_else(|| {
                    OpsError::invalid("invalid_cursor", "the cursor is not one this API gave out")
                })?,
            None => 0,
        };
        Ok(AuditQuery {
            from,
            to,
            recording_id,
            recording_key,
            after,
            limit: ops::limit(self.limit, 100)?,
        })
    }
}

#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<TrailQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.parse()?;
    // A page shows everything done so far, the archives waiting in the inbox included.
    audit::chain_pending(&state.db).await?;
    Ok(HttpResponse::Ok().json(audit::page(&state.db, &query).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: Option<&str>, recording: Option<&str>, cursor: Option<&str>) -> TrailQuery {
        TrailQuery {
            from: from.map(str::to_owned),
            to: None,
            recording: recording.map(str::to_owned),
            cursor: cursor.map(str::to_owned),
            limit: None,
        }
    }

    #[test]
    fn filters_parse_and_bad_ones_are_named() {
        let parsed = query(Some("2026-12-03"), Some("42"), Some("7"))
            .parse()
            .unwrap();
        assert_eq!(parsed.from, Some(1_796_256_000_000));
        assert_eq!(
            (parsed.recording_id, parsed.after, parsed.limit),
            (Some(42), 7, 100)
        );
        let by_key = query(Some("2026-12-03T01:00:00+01:00"), Some("call/rec"), None)
            .parse()
            .unwrap();
        assert_eq!(by_key.from, Some(1_796_256_000_000));
        assert_eq!(by_key.recording_key.as_deref(), Some("call/rec"));
        for (bad, code) in [
            (query(Some("yesterday"), None, None), "invalid_time"),
            (query(None, None, Some("-1")), "invalid_cursor"),
            (query(None, Some(&"x".repeat(2000)), None), "invalid_query"),
        ] {
            match bad.parse() {
                Err(OpsError::Invalid { code: got, .. }) => assert_eq!(got, code),
                other => panic!("{other:?}"),
            }
        }
    }
}
