//! A participant's identity: the raw identifiers ACS writes in a chunk's metadata
//! (`participants[].participantId`) and the one key each normalises to, so that every way of
//! writing one person's identifier finds the same recordings.
//!
//! The rules (docs/compliance.md repeats them for operators):
//!
//! - Surrounding whitespace is ignored; an empty identifier, one over [`MAX_ID_BYTES`] bytes,
//!   or one holding a control character is refused.
//! - A phone number is `4:` (optional) then `+` (optional) then 1 to 15 digits, with spaces,
//!   dashes, dots and parentheses between them ignored: `4:+14255550123`, `+1 425-555-0123`
//!   and `14255550123` are all `4:+14255550123`.
//! - Any other identifier keeps its kind prefix (`8:acs:`, `8:orgid:`, `8:teamsvisitor:`,
//!   `8:gcch:`, `28:orgid:`…), which is lowercased. What follows the prefix is lowercased only
//!   when it is made of hexadecimal digits, `-` and `_` (GUIDs, as ACS and Entra ID write
//!   them, where case carries no meaning); anything else keeps its case. Whitespace inside
//!   an identifier that is not a phone number is refused.
//!
//! This module is a leaf: the queue stores these keys and the worker and lookups make them.

use std::collections::BTreeSet;
use std::fmt;

/// The longest identifier indexed, in bytes. ACS identifiers are under 100 bytes
/// (`8:acs:` and two GUIDs); anything far longer is not one.
pub const MAX_ID_BYTES: usize = 256;

/// The most participants indexed for one chunk: Teams meetings allow 1,000 interactive
/// participants. A metadata document naming more has the rest skipped and counted.
pub const MAX_PER_CHUNK: usize = 1000;

/// E.164 allows at most 15 digits.
const MAX_PHONE_DIGITS: usize = 15;

/// A normalised participant identifier: the key of the participant index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ParticipantId(String);

/// Why an identifier cannot be a participant key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidParticipantId {
    #[error("the participant id is empty")]
    Empty,
    #[error("the participant id is {bytes} bytes long; at most {MAX_ID_BYTES} are accepted")]
    TooLong { bytes: usize },
    #[error("the participant id holds a control character")]
    ControlCharacter,
    #[error(
        "the participant id holds whitespace; only a phone number may (`+1 425 555 0123`), and an ACS identifier never does"
    )]
    Whitespace,
}

/// What kind of identity an identifier names, read from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantKind {
    /// `4:+…`
    PhoneNumber,
    /// `8:acs:`, `8:spool:`, `8:dod-acs:`, `8:gcch-acs:`
    CommunicationUser,
    /// `8:orgid:`, `8:dod:`, `8:gcch:`
    TeamsUser,
    /// `8:teamsvisitor:`
    TeamsVisitor,
    /// `28:…` (bots and Teams apps)
    TeamsApp,
    /// Anything else, kept as written.
    Other,
}

impl ParticipantId {
    /// Normalises one identifier as written by ACS or typed by an operator.
    pub fn parse(raw: &str) -> Result<Self, InvalidParticipantId> {
        // Checked before anything else, so a huge input costs no more than its length.
        if raw.len() > MAX_ID_BYTES {
            return Err(InvalidParticipantId::TooLong { bytes: raw.len() });
        }
        let id = raw.trim();
        if id.is_empty() {
            return Err(InvalidParticipantId::Empty);
        }
        if id.chars().any(char::is_control) {
            return Err(InvalidParticipantId::ControlCharacter);
        }
        if let Some(digits) = phone_digits(id) {
            return Ok(Self(format!("4:+{digits}")));
        }
        if id.chars().any(char::is_whitespace) {
            return Err(InvalidParticipantId::Whitespace);
        }
        // The prefix is everything up to the last `:` (`8:acs:`, `28:orgid:`), if any.
        let (prefix, value) = match id.rfind(':') {
            Some(at) => id.split_at(at + 1),
            None => ("", id),
        };
        let value = if is_guid_like(value) {
            value.to_ascii_lowercase()
        } else {
            value.to_owned()
        };
        Ok(Self(format!("{}{value}", prefix.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind its prefix names.
    pub fn kind(&self) -> ParticipantKind {
        let id = self.0.as_str();
        let starts = |prefixes: &[&str]| prefixes.iter().any(|p| id.starts_with(p));
        if starts(&["4:+"]) {
            ParticipantKind::PhoneNumber
        } else if starts(&["8:acs:", "8:spool:", "8:dod-acs:", "8:gcch-acs:"]) {
            ParticipantKind::CommunicationUser
        } else if starts(&["8:orgid:", "8:dod:", "8:gcch:"]) {
            ParticipantKind::TeamsUser
        } else if starts(&["8:teamsvisitor:"]) {
            ParticipantKind::TeamsVisitor
        } else if starts(&["28:"]) {
            ParticipantKind::TeamsApp
        } else {
            ParticipantKind::Other
        }
    }

    /// A key already normalised, as read back from the index.
    pub fn from_stored(key: String) -> Self {
        Self(key)
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The digits of a phone number written in any of the accepted ways, or None.
fn phone_digits(id: &str) -> Option<String> {
    let number = id.strip_prefix("4:").unwrap_or(id);
    let number = number.strip_prefix('+').unwrap_or(number);
    let mut digits = String::with_capacity(MAX_PHONE_DIGITS);
    for c in number.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
        if digits.len() > MAX_PHONE_DIGITS {
            return None;
        }
    }
    // A separator must sit between digits, not stand for a number: `4:` alone or `--` is not one.
    let starts_with_digit = number
        .trim_start_matches(['(', ' '])
        .starts_with(|c: char| c.is_ascii_digit());
    (!digits.is_empty() && starts_with_digit).then_some(digits)
}

/// Hexadecimal digits, `-` and `_`: a GUID or a pair of them, where case means nothing.
fn is_guid_like(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
}

/// The identifiers of one chunk, normalised, deduplicated and bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkParticipants {
    /// Distinct keys, sorted.
    pub ids: Vec<ParticipantId>,
    pub skipped: Skipped,
}

/// Identifiers of a chunk left out of the index, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Longer than [`MAX_ID_BYTES`].
    pub too_long: u64,
    /// Empty, or holding a control character or (outside a phone number) whitespace.
    pub invalid: u64,
    /// Beyond the first [`MAX_PER_CHUNK`] distinct identifiers.
    pub over_limit: u64,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.too_long + self.invalid + self.over_limit
    }

    pub fn add(&mut self, other: Skipped) {
        self.too_long += other.too_long;
        self.invalid += other.invalid;
        self.over_limit += other.over_limit;
    }
}

impl ChunkParticipants {
    /// Reads the raw identifiers of a metadata document; a bad one is skipped and counted,
    /// never fatal: the chunk is archived whatever its metadata says.
    pub fn read<'a>(raw: impl IntoIterator<Item = &'a str>) -> Self {
        let mut ids = BTreeSet::new();
        let mut skipped = Skipped::default();
        for one in raw {
            match ParticipantId::parse(one) {
                Ok(id) if ids.contains(&id) => {}
                Ok(_) if ids.len() >= MAX_PER_CHUNK => skipped.over_limit += 1,
                Ok(id) => {
                    ids.insert(id);
                }
                Err(InvalidParticipantId::TooLong { .. }) => skipped.too_long += 1,
                Err(_) => skipped.invalid += 1,
            }
        }
        Self {
            ids: ids.into_iter().collect(),
            skipped,
        }
    }

    /// From the JSON array of raw identifiers the queue keeps per job (`jobs.participants`);
    /// unreadable JSON names nobody.
    pub fn from_stored_json(json: &str) -> Self {
        let raw: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
        Self::read(raw.iter().filter_map(serde_json::Value::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        ParticipantId::parse(raw)
            .unwrap_or_else(|err| panic!("{raw}: {err}"))
            .to_string()
    }

    #[test]
    fn a_phone_number_written_any_way_is_one_key() {
        for raw in [
            "4:+14255550123",
            "+14255550123",
            "14255550123",
            "4:14255550123",
            "+1 425-555-0123",
            "4:+1 (425) 555.0123",
            "  +1 425 555 0123 ",
        ] {
            assert_eq!(key(raw), "4:+14255550123", "{raw}");
        }
    }

    #[test]
    fn what_is_not_a_phone_number_is_not_read_as_one() {
        // Sixteen digits is beyond E.164; a lone prefix or separators name no number.
        assert_eq!(
            ParticipantId::parse("+1234567890123456"),
            Ok(ParticipantId("+1234567890123456".into()))
        );
        assert_eq!(key("4:anonymous"), "4:anonymous");
        assert_eq!(key("4:"), "4:");
        assert_eq!(
            ParticipantId::parse("- -"),
            Err(InvalidParticipantId::Whitespace)
        );
        assert_eq!(key("4:+1425_x"), "4:+1425_x");
    }

    #[test]
    fn acs_identifiers_keep_their_kind_prefix_and_guids_fold_case() {
        let acs = "8:acs:631fa8d8-1b2c-4d3e-8f90-a1b2c3d4e5f6_0000000c-0d1e-2f3a-4b5c-6d7e8f9a0b1c";
        assert_eq!(key(acs), acs);
        assert_eq!(key(&acs.to_ascii_uppercase()), acs);
        assert_eq!(
            key("8:orgid:3F2504E0-4F89-11D3-9A0C-0305E82C3301"),
            "8:orgid:3f2504e0-4f89-11d3-9a0c-0305e82c3301"
        );
        assert_eq!(key("8:TeamsVisitor:ABC-123"), "8:teamsvisitor:abc-123");
        assert_eq!(key("8:gcch:AB12"), "8:gcch:ab12");
        // Not a GUID: its case may mean something, so it is kept.
        assert_eq!(key("8:acs:Resource_User.Name"), "8:acs:Resource_User.Name");
        assert_eq!(key("alice"), "alice");
    }

    #[test]
    fn kinds_are_read_from_the_prefix() {
        let kind = |raw: &str| ParticipantId::parse(raw).unwrap().kind();
        assert_eq!(kind("+1 425 555 0123"), ParticipantKind::PhoneNumber);
        assert_eq!(kind("8:acs:a_b"), ParticipantKind::CommunicationUser);
        assert_eq!(kind("8:gcch-acs:a_b"), ParticipantKind::CommunicationUser);
        assert_eq!(kind("8:orgid:ab"), ParticipantKind::TeamsUser);
        assert_eq!(kind("8:dod:ab"), ParticipantKind::TeamsUser);
        assert_eq!(kind("8:teamsvisitor:ab"), ParticipantKind::TeamsVisitor);
        assert_eq!(kind("28:orgid:ab"), ParticipantKind::TeamsApp);
        assert_eq!(kind("someone"), ParticipantKind::Other);
    }

    #[test]
    fn hostile_identifiers_are_refused_with_a_reason() {
        assert_eq!(ParticipantId::parse(""), Err(InvalidParticipantId::Empty));
        assert_eq!(ParticipantId::parse("  "), Err(InvalidParticipantId::Empty));
        assert_eq!(
            ParticipantId::parse(&"a".repeat(MAX_ID_BYTES + 1)),
            Err(InvalidParticipantId::TooLong {
                bytes: MAX_ID_BYTES + 1
            })
        );
        assert!(ParticipantId::parse(&"a".repeat(MAX_ID_BYTES)).is_ok());
        assert_eq!(
            ParticipantId::parse("8:acs:a\u{0}b"),
            Err(InvalidParticipantId::ControlCharacter)
        );
        assert_eq!(
            ParticipantId::parse("8:acs:a b"),
            Err(InvalidParticipantId::Whitespace)
        );
    }

    #[test]
    fn a_chunk_is_deduplicated_bounded_and_counts_what_it_skips() {
        let long = "8:acs:".to_owned() + &"a".repeat(MAX_ID_BYTES);
        let read = ChunkParticipants::read([
            "4:+14255550123",
            "+1 425 555 0123",
            long.as_str(),
            "",
            "8:acs:AB",
        ]);
        assert_eq!(
            read.ids,
            vec![
                ParticipantId("4:+14255550123".into()),
                ParticipantId("8:acs:ab".into())
            ]
        );
        assert_eq!(
            read.skipped,
            Skipped {
                too_long: 1,
                invalid: 1,
                over_limit: 0
            }
        );

        let many: Vec<String> = (0..MAX_PER_CHUNK + 5)
            .map(|n| format!("8:acs:{n:x}"))
            .collect();
        let mut raw: Vec<&str> = many.iter().map(String::as_str).collect();
        raw.push("8:acs:0"); // a repeat of a kept one is neither kept twice nor counted
        let read = ChunkParticipants::read(raw);
        assert_eq!(read.ids.len(), MAX_PER_CHUNK);
        assert_eq!(read.skipped.over_limit, 5);
        assert_eq!(read.skipped.total(), 5);
    }

    #[test]
    fn the_stored_json_list_is_read_loosely() {
        let read =
            ChunkParticipants::from_stored_json(r#"["8:acs:A", 5, null, "4:+44 20 7946 0000"]"#);
        assert_eq!(
            read.ids,
            vec![
                ParticipantId("4:+442079460000".into()),
                ParticipantId("8:acs:a".into())
            ]
        );
        assert!(
            ChunkParticipants::from_stored_json("not json")
                .ids
                .is_empty()
        );
    }
}
