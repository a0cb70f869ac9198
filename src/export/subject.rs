//! Who a recording belongs to and whether it still exists: the two questions an access
//! request asks of the rest of callvault, each behind one function.

use super::ExportError;
use crate::queue::Db;
use crate::queue::recordings::Recording;

/// The recordings whose chunks' metadata documents name `participant`, oldest first.
///
/// Read from the participant ids each archived job keeps (`jobs.participants`, a JSON list):
/// a coarse `LIKE` finds candidates, and the list is then parsed so that only an exact id
/// matches. This reads every archived job; the participant index replaces it with a lookup.
pub async fn recordings_of_participant(
    db: &Db,
    participant: &str,
) -> Result<Vec<i64>, ExportError> {
    let quoted = serde_json::to_string(participant).expect("a string serialises");
    let pattern = format!("%{}%", like_escape(&quoted));
    let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT recording_id, participants FROM jobs
         WHERE state = 'archived' AND participants LIKE $1 ESCAPE '\\'
         ORDER BY recording_id",
    )
    .bind(pattern)
    .fetch_all(db.pool())
    .await
    .map_err(crate::queue::QueueError::from)?;
    let mut found: Vec<i64> = Vec::new();
    for (recording, participants) in rows {
        let names: Vec<String> = participants
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        if names.iter().any(|name| name == participant) && found.last() != Some(&recording) {
            found.push(recording);
        }
    }
    Ok(found)
}

/// When the recording was erased (epoch milliseconds), or None while it is kept. No recording
/// is erased before erasure exists.
pub fn erased_at(_recording: &Recording) -> Option<i64> {
    None
}

/// `text` with LIKE's wildcards and the escape character itself escaped by `\`.
fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escape(r#""8:acs:a_b%c\d""#), r#""8:acs:a\_b\%c\\d""#);
    }
}
