//! What an access request asks for: every recording of one participant, or recordings by id.

use serde::{Deserialize, Serialize};

use super::ExportError;

/// At most this many recordings asked for by id in one export.
pub const MAX_RECORDINGS: usize = 1000;
/// The longest participant id accepted (ACS raw ids are well under 200 bytes).
pub const MAX_PARTICIPANT_BYTES: usize = 256;

/// The request as the admin API takes it: `{"participant": "8:acs:…"}` or
/// `{"recordings": [12, 15]}`. Kept verbatim in `index.json` and the exports table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Selection {
    /// Every archived recording that lists this participant id.
    Participant(String),
    /// These recordings (database ids, as `callvault recordings list` shows them).
    Recordings(Vec<i64>),
}

impl Selection {
    /// The selection bounded and normalised: a participant id of 1 to 256 bytes without
    /// control characters; 1 to 1,000 recording ids, each once, in the order given.
    pub fn checked(self) -> Result<Self, ExportError> {
        match self {
            Selection::Participant(id) => {
                let id = id.trim().to_owned();
                if id.is_empty() {
                    return Err(invalid("the participant id is empty"));
                }
                if id.len() > MAX_PARTICIPANT_BYTES {
                    return Err(invalid(format!(
                        "the participant id is {} bytes; at most {MAX_PARTICIPANT_BYTES} are accepted",
                        id.len()
                    )));
                }
                if id.chars().any(char::is_control) {
                    return Err(invalid("the participant id contains a control character"));
                }
                Ok(Selection::Participant(id))
            }
            Selection::Recordings(ids) => {
                if ids.is_empty() {
                    return Err(invalid("no recording id was given"));
                }
                if ids.len() > MAX_RECORDINGS {
                    return Err(invalid(format!(
                        "{} recording ids were given; at most {MAX_RECORDINGS} fit in one export",
                        ids.len()
                    )));
                }
                let mut unique = Vec::with_capacity(ids.len());
                for id in ids {
                    if !unique.contains(&id) {
                        unique.push(id);
                    }
                }
                Ok(Selection::Recordings(unique))
            }
        }
    }

    /// For logs and messages: `participant 8:acs:…` or `recordings 12, 15`.
    pub fn describe(&self) -> String {
        match self {
            Selection::Participant(id) => format!("participant {}", crate::quote::quote(id)),
            Selection::Recordings(ids) => {
                let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                format!("recordings {}", ids.join(", "))
            }
        }
    }
}

fn invalid(message: impl Into<String>) -> ExportError {
    ExportError::InvalidSelection(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_body_shapes_parse_and_unknown_fields_are_refused() {
        let participant: Selection = serde_json::from_str(r#"{"participant":"8:acs:a"}"#).unwrap();
        assert_eq!(participant, Selection::Participant("8:acs:a".into()));
        let ids: Selection = serde_json::from_str(r#"{"recordings":[3,1]}"#).unwrap();
        assert_eq!(ids, Selection::Recordings(vec![3, 1]));
        assert!(
            serde_json::from_str::<Selection>(r#"{"participant":"a","recordings":[1]}"#).is_err()
        );
        assert!(serde_json::from_str::<Selection>(r#"{"everyone":true}"#).is_err());
    }

    #[test]
    fn selections_are_bounded_and_normalised() {
        assert_eq!(
            Selection::Recordings(vec![3, 1, 3]).checked().unwrap(),
            Selection::Recordings(vec![3, 1])
        );
        assert_eq!(
            Selection::Participant(" 8:acs:a ".into())
                .checked()
                .unwrap(),
            Selection::Participant("8:acs:a".into())
        );
        for refused in [
            Selection::Recordings(vec![]),
            Selection::Recordings((0..1001).collect()),
            Selection::Participant("  ".into()),
            Selection::Participant("a\nb".into()),
            Selection::Participant("x".repeat(257)),
        ] {
            let err = refused.clone().checked().unwrap_err();
            assert!(
                matches!(err, ExportError::InvalidSelection(_)),
                "{refused:?}: {err}"
            );
        }
    }
}
