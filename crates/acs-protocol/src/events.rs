//! The Event Grid event types of the ACS recording flow (docs/protocol.md).

pub const SUBSCRIPTION_VALIDATION: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";
pub const RECORDING_FILE_STATUS_UPDATED: &str =
    "Microsoft.Communication.RecordingFileStatusUpdated";
pub const RECORDING_STATE_CHANGED: &str = "Microsoft.Communication.RecordingStateChanged";
/// A call leg's state, announced for server-initiated calls; its `data.ConversationId` is
/// what the preview control API records.
pub const CALL_LEG_STATE_CHANGED: &str = "Microsoft.Communication.CallLegStateChanged";
