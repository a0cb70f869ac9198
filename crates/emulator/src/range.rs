//! `Range: bytes=…` as the ACS download endpoints answer it: one range, 206 when it fits,
//! 416 when it does not, and the whole body when the header is absent or not understood.

/// What a request asks for, measured against a body of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable `Range`: 200 with everything.
    Full,
    /// Bytes `start..=end` (inclusive, as `Content-Range` writes them): 206.
    Partial { start: u64, end: u64 },
    /// A range that starts past the end: 416 with `Content-Range: bytes */total`.
    Unsatisfiable,
}

impl RangeRequest {
    /// Reads a `Range` header value. Forms served: `bytes=a-`, `bytes=a-b`, `bytes=-n`.
    /// Anything else (several ranges, other units, garbage) is ignored, which RFC 9110
    /// allows and which gives the client the full body rather than a surprise.
    pub fn parse(header: Option<&str>, total: u64) -> Self {
        let Some(spec) = header.and_then(|value| value.trim().strip_prefix("bytes=")) else {
            return RangeRequest::Full;
        };
        if spec.contains(',') {
            return RangeRequest::Full;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return RangeRequest::Full;
        };
        let (first, last) = (first.trim(), last.trim());
        if first.is_empty() {
            return match last.parse::<u64>() {
                Ok(0) => RangeRequest::Unsatisfiable,
                Ok(_) if total == 0 => RangeRequest::Unsatisfiable,
                Ok(suffix) => RangeRequest::Partial {
                    start: total.saturating_sub(suffix),
                    end: total - 1,
                },
                Err(_) => RangeRequest::Full,
            };
        }
        let Ok(start) = first.parse::<u64>() else {
            return RangeRequest::Full;
        };
        let end = if last.is_empty() {
            None
        } else {
            match last.parse::<u64>() {
                Ok(end) if end >= start => Some(end),
                _ => return RangeRequest::Full,
            }
        };
        if start >= total {
            return RangeRequest::Unsatisfiable;
        }
        RangeRequest::Partial {
            start,
            end: end.map_or(total - 1, |end| end.min(total - 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{self, *};

    fn parse(header: &str, total: u64) -> RangeRequest {
        RangeRequest::parse(Some(header), total)
    }

    #[test]
    fn open_and_closed_ranges_are_partial() {
        assert_eq!(parse("bytes=10-", 100), Partial { start: 10, end: 99 });
        assert_eq!(parse("bytes=10-19", 100), Partial { start: 10, end: 19 });
        assert_eq!(parse("bytes=0-0", 1), Partial { start: 0, end: 0 });
    }

    #[test]
    fn an_end_past_the_body_is_clamped() {
        assert_eq!(parse("bytes=90-500", 100), Partial { start: 90, end: 99 });
    }

    #[test]
    fn a_suffix_range_counts_from_the_end() {
        assert_eq!(parse("bytes=-10", 100), Partial { start: 90, end: 99 });
        assert_eq!(parse("bytes=-500", 100), Partial { start: 0, end: 99 });
    }

    #[test]
    fn a_start_at_or_past_the_end_is_unsatisfiable() {
        assert_eq!(parse("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), Unsatisfiable);
    }

    #[test]
    fn absent_or_unsupported_ranges_mean_the_full_body() {
        assert_eq!(RangeRequest::parse(None, 100), Full);
        assert_eq!(parse("bytes=0-1,5-6", 100), Full);
        assert_eq!(parse("items=0-1", 100), Full);
        assert_eq!(parse("bytes=5-2", 100), Full);
        assert_eq!(parse("bytes=x-", 100), Full);
    }
}
