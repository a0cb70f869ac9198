//! What a CallLegStateChanged event says, once validated: the shape ingest hands to the
//! queue, and the ids derived from it that must come out the same on every replica.

/// One call leg's change of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegChange {
    /// `data.CallLegId`.
    pub call_leg_id: String,
    /// `data.ConversationId`: Base64Url of the conversation's URL.
    pub conversation_id: String,
    /// `data.CallState`, as sent (`Established`, `Disconnected`, …).
    pub state: String,
    /// `eventTime`, epoch milliseconds: orders the states of a leg.
    pub state_changed_at: i64,
}

/// The state in which recording on policy starts a leg's recording.
pub const ESTABLISHED: &str = "Established";

impl LegChange {
    /// Whether this change establishes the leg (ACS spells states in PascalCase; any case is read).
    pub fn is_established(&self) -> bool {
        self.state.eq_ignore_ascii_case(ESTABLISHED)
    }
}

/// Names callvault derives its call-leg ids under, so they never meet ids of other origins.
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_2b8e_93d4_4c5a_a0e7_5d2f_8b13_c947);

/// A UUID version 5 (RFC 9562: SHA-1 of namespace and name).
fn uuid_v5(name: &str) -> uuid::Uuid {
    use sha1::Digest;
    let mut hasher = sha1::Sha1::new();
    hasher.update(NAMESPACE.as_bytes());
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// The `Repeatability-Request-ID` of a leg's recording start: the same for every attempt,
/// on every replica, so ACS answers a repeated start with the recording it already started.
pub fn repeatability_request_id(call_leg_id: &str) -> String {
    uuid_v5(&format!("recording-start\n{call_leg_id}")).to_string()
}

/// The dedup id of a CallLegStateChanged event sent without one (the 2021 shape has
/// `"id": null`): the same leg, state and eventTime make the same id, whoever delivers it.
pub fn derived_event_id(call_leg_id: &str, state: &str, event_time: &str) -> String {
    // Length-prefixed, so no two triples make the same name.
    let name = format!(
        "call-leg-state\n{}:{call_leg_id}\n{}:{state}\n{event_time}",
        call_leg_id.len(),
        state.len()
    );
    format!("callLegState-{}", uuid_v5(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_version_5_and_stable() {
        let id = repeatability_request_id("leg-1");
        assert_eq!(id, repeatability_request_id("leg-1"));
        assert_ne!(id, repeatability_request_id("leg-2"));
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 5);
    }

    #[test]
    fn the_event_id_changes_with_each_part() {
        let base = derived_event_id("leg", "Established", "2021-04-14T16:32:34.1115003Z");
        assert!(base.starts_with("callLegState-"), "{base}");
        assert_ne!(
            base,
            derived_event_id("leg", "Disconnected", "2021-04-14T16:32:34.1115003Z")
        );
        assert_ne!(
            base,
            derived_event_id("leg", "Established", "2021-04-14T16:32:35Z")
        );
        assert_ne!(
            base,
            derived_event_id("leg2", "Established", "2021-04-14T16:32:34.1115003Z")
        );
        // Parts never run into each other.
        assert_ne!(
            derived_event_id("a\nb", "c", "t"),
            derived_event_id("a", "b\nc", "t")
        );
    }
}
