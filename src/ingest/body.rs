//! Reading a request body under a limit we enforce ourselves: actix does not apply
//! `PayloadConfig` to a raw `web::Payload` stream.

use actix_web::web;
use bytes::BytesMut;
use futures_util::StreamExt;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {0} bytes (server.max_body_bytes)")]
    TooLarge(usize),
    #[error("the body could not be read: {0}")]
    Read(String),
}

pub async fn read_limited(
    mut payload: web::Payload,
    declared: Option<usize>,
    limit: usize,
) -> Result<bytes::Bytes, BodyError> {
    if declared.is_some_and(|length| length > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8192).min(limit));
    while let Some(piece) = payload.next().await {
        let piece = piece.map_err(|err| BodyError::Read(err.to_string()))?;
        if body.len() + piece.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&piece);
    }
    Ok(body.freeze())
}
