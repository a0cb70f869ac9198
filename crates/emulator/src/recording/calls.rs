//! The calls recordings are made of: who takes part, and the ids ACS gives a call.

use crate::documents::participant_id;

/// Participants a call gets when nobody registered any.
const DEFAULT_PARTICIPANTS: u8 = 2;

/// A call known to the emulator, keyed by its `serverCallId` (GA) or `conversationId`
/// (preview).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// ACS's `callId`: the first part of RecordingFileStatusUpdated's subject.
    pub call_id: String,
    /// ACS user ids (`8:acs:…`), in the order they joined.
    pub participants: Vec<String>,
    /// `callConnectionId` of RecordingStateChanged.
    pub call_connection_id: String,
    /// `correlationId` of RecordingStateChanged.
    pub correlation_id: String,
}

impl Call {
    /// A new call with `participants`, or two generated `8:acs:` users when `None`.
    pub fn new(participants: Option<Vec<String>>) -> Self {
        let call_id = uuid::Uuid::new_v4().to_string();
        let participants = participants.unwrap_or_else(|| {
            (0..DEFAULT_PARTICIPANTS)
                .map(|n| participant_id(&call_id, n))
                .collect()
        });
        Self {
            call_id,
            participants,
            call_connection_id: uuid::Uuid::new_v4().to_string(),
            correlation_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_nobody_registered_has_two_acs_participants() {
        let call = Call::new(None);
        assert_eq!(call.participants.len(), 2);
        assert!(call.participants.iter().all(|id| id.starts_with("8:acs:")));
        assert_ne!(call.participants[0], call.participants[1]);
        assert_ne!(Call::new(None).call_id, call.call_id);
    }

    #[test]
    fn registered_participants_are_kept_in_order() {
        let call = Call::new(Some(vec!["8:acs:b".into(), "8:acs:a".into()]));
        assert_eq!(call.participants, ["8:acs:b", "8:acs:a"]);
    }
}
