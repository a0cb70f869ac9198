//! Misbehaviour a test can ask of one document — the failures ACS is known for: error
//! statuses, streams that break midway, slow streams, and empty 200s.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::media::CHUNK;

/// A fault set on a document with [`crate::Emulator::set_fault`]. In JSON (the control
/// API) it is tagged by `kind`: `{"kind":"status","status":503,"times":2}`,
/// `{"kind":"resetAfter","afterBytes":1000,"times":1}`, `{"kind":"throttle","bytesPerSecond":1000}`,
/// `{"kind":"emptyBody","times":1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Fault {
    /// Answer `status` (ACS JSON error body {code,message,target,details}) to the first
    /// `times` media/metadata GETs of the document, then serve normally.
    Status { status: u16, times: u32 },
    /// Close the connection after sending `after_bytes` bytes of the media body, for the
    /// first `times` media GETs (a mid-stream reset the client must resume with Range).
    ResetAfter { after_bytes: u64, times: u32 },
    /// Serve media at most this many bytes per second.
    Throttle { bytes_per_second: u64 },
    /// Answer 200 with an empty media body for the first `times` media GETs.
    EmptyBody { times: u32 },
}

/// Which of a document's bodies a GET asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Media,
    Metadata,
}

/// What a fault does to one GET; decided, and counted, when the GET arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Serve,
    Status(u16),
    ResetAfter(u64),
    Throttle(u64),
    EmptyBody,
}

/// A fault with the number of GETs it has already spoiled.
#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    fault: Fault,
    used: u32,
}

impl ActiveFault {
    pub(crate) fn new(fault: Fault) -> Self {
        Self { fault, used: 0 }
    }

    /// The effect on the next GET of `target`, consuming one of the fault's `times`. A GET
    /// whose range cannot be served (416) only meets status faults: the others act on a
    /// body, and should still be waiting for the request that gets one.
    pub(crate) fn take(&mut self, target: Target, has_body: bool) -> Effect {
        if !has_body && !matches!(self.fault, Fault::Status { .. }) {
            return Effect::Serve;
        }
        let (effect, times) = match (&self.fault, target) {
            (Fault::Status { status, times }, _) => (Effect::Status(*status), *times),
            (Fault::Throttle { bytes_per_second }, Target::Media) => {
                return Effect::Throttle(*bytes_per_second);
            }
            (Fault::ResetAfter { after_bytes, times }, Target::Media) => {
                (Effect::ResetAfter(*after_bytes), *times)
            }
            (Fault::EmptyBody { times }, Target::Media) => (Effect::EmptyBody, *times),
            (_, Target::Metadata) => return Effect::Serve,
        };
        if self.used < times {
            self.used += 1;
            effect
        } else {
            Effect::Serve
        }
    }
}

/// A served body: chunks, or an error that makes actix drop the connection.
pub(crate) type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>>>>;

/// Passes `limit` bytes of `source` through, then fails: with a declared Content-Length the
/// client sees a connection closed before the end, as with a real reset.
pub(crate) fn cut_after(source: impl Stream<Item = Bytes> + 'static, limit: u64) -> BodyStream {
    let state = (Box::pin(source), limit, false);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut source, remaining, failed)| async move {
            if failed {
                return None;
            }
            if remaining == 0 {
                // actix drops its unsent buffer when a body fails; pausing once first lets it
                // flush the head and the bytes before the "reset", as a real one would.
                tokio::task::yield_now().await;
                let reset = std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "emulated mid-stream reset",
                );
                return Some((Err(reset), (source, 0, true)));
            }
            let mut chunk = source.next().await?;
            if chunk.len() as u64 > remaining {
                chunk.truncate(remaining as usize);
            }
            let left = remaining - chunk.len() as u64;
            Some((Ok(chunk), (source, left, false)))
        },
    ))
}

/// Paces `source` so that no more than `bytes_per_second` have left by any moment.
pub(crate) fn throttle(
    source: impl Stream<Item = Bytes> + 'static,
    bytes_per_second: u64,
) -> BodyStream {
    let rate = bytes_per_second.max(1);
    // Tenth-of-a-second pieces keep the pace smooth without a poll per byte.
    let piece = (rate / 10).clamp(1, CHUNK as u64) as usize;
    let start = tokio::time::Instant::now();
    let state = (Box::pin(source), Bytes::new(), 0u64);
    Box::pin(futures_util::stream::unfold(
        state,
        move |(mut source, mut pending, sent)| async move {
            while pending.is_empty() {
                pending = source.next().await?;
            }
            let out = pending.split_to(piece.min(pending.len()));
            let sent = sent + out.len() as u64;
            let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
            Some((Ok(out), (source, pending, sent)))
        },
    ))
}

/// The body unchanged.
pub(crate) fn plain(source: impl Stream<Item = Bytes> + 'static) -> BodyStream {
    Box::pin(source.map(Ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_fault_spoils_media_and_metadata_the_given_number_of_times() {
        let mut fault = ActiveFault::new(Fault::Status {
            status: 503,
            times: 2,
        });
        assert_eq!(fault.take(Target::Media, true), Effect::Status(503));
        assert_eq!(fault.take(Target::Metadata, true), Effect::Status(503));
        assert_eq!(fault.take(Target::Media, true), Effect::Serve);
    }

    #[test]
    fn media_faults_leave_metadata_alone_and_are_not_consumed_by_it() {
        let mut fault = ActiveFault::new(Fault::EmptyBody { times: 1 });
        assert_eq!(fault.take(Target::Metadata, true), Effect::Serve);
        assert_eq!(fault.take(Target::Media, false), Effect::Serve);
        assert_eq!(fault.take(Target::Media, true), Effect::EmptyBody);
        assert_eq!(fault.take(Target::Media, true), Effect::Serve);
    }

    #[test]
    fn throttling_never_wears_off() {
        let mut fault = ActiveFault::new(Fault::Throttle {
            bytes_per_second: 10,
        });
        for _ in 0..5 {
            assert_eq!(fault.take(Target::Media, true), Effect::Throttle(10));
        }
    }

    #[test]
    fn faults_read_from_tagged_camel_case_json() {
        let fault: Fault =
            serde_json::from_str(r#"{"kind":"resetAfter","afterBytes":10,"times":1}"#).unwrap();
        assert_eq!(
            fault,
            Fault::ResetAfter {
                after_bytes: 10,
                times: 1
            }
        );
    }

    #[tokio::test]
    async fn cut_after_yields_exactly_the_limit_then_an_error() {
        let source = futures_util::stream::iter(vec![Bytes::from(vec![1u8; 10]); 3]);
        let items: Vec<_> = cut_after(source, 15).collect().await;
        let bytes: usize = items
            .iter()
            .filter_map(|item| item.as_ref().ok())
            .map(Bytes::len)
            .sum();
        assert_eq!(bytes, 15);
        assert!(items.last().unwrap().is_err());
    }

    #[tokio::test]
    async fn throttle_takes_as_long_as_the_rate_demands() {
        let source = futures_util::stream::iter(vec![Bytes::from(vec![0u8; 2000])]);
        let start = tokio::time::Instant::now();
        let items: Vec<_> = throttle(source, 10_000).collect().await;
        assert_eq!(items.len(), 2, "1000-byte pieces for 10 kB/s");
        assert!(start.elapsed() >= Duration::from_millis(200));
    }
}
