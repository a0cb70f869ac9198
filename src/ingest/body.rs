//! Reading a request body under a size limit and a deadline we enforce ourselves: actix does
//! not apply `PayloadConfig` to a raw `web::Payload` stream, and its request timeout covers
//! only the headers, so a client trickling a byte a second would hold a worker for hours.

use std::time::Duration;

use actix_web::web;
use bytes::BytesMut;
use futures_util::StreamExt;

/// How long a whole webhook body may take to arrive. Event Grid sends at most ~1 MB at once
/// and gives up on an answer after 30 s, so nothing legitimate is slower.
pub const BODY_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {0} bytes (server.max_body_bytes)")]
    TooLarge(usize),
    #[error("the body did not arrive within {} s", .0.as_secs_f64())]
    TooSlow(Duration),
    #[error("the body could not be read: {0}")]
    Read(String),
}

/// Reads the body, refusing it once it passes `limit` bytes or `deadline` from now.
/// `declared` (Content-Length) only refuses early; memory grows with the bytes received.
pub async fn read_limited(
    payload: &mut web::Payload,
    declared: Option<usize>,
    limit: usize,
    deadline: Duration,
) -> Result<bytes::Bytes, BodyError> {
    if declared.is_some_and(|length| length > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let read = async {
        let mut body = BytesMut::new();
        while let Some(piece) = payload.next().await {
            let piece = piece.map_err(|err| BodyError::Read(err.to_string()))?;
            if body.len() + piece.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            body.extend_from_slice(&piece);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| BodyError::TooSlow(deadline))?
}
