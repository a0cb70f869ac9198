//! The preview API names a call by its conversation URL, encoded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Base64Url (not base64) of a `conversationUrl`: the preview API's `conversationId`.
pub fn conversation_id(conversation_url: &str) -> String {
    URL_SAFE_NO_PAD.encode(conversation_url.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_id_is_base64url_without_padding() {
        // This URL's plain base64 holds both '+' and '/'.
        let url = "https://conv-ukso-02.conv.skype.com/conv/?x=~>>??";
        let standard = base64::engine::general_purpose::STANDARD.encode(url);
        assert!(
            standard.contains('+') && standard.contains('/'),
            "{standard}"
        );
        let id = conversation_id(url);
        assert!(
            !id.contains('+') && !id.contains('/') && !id.contains('='),
            "{id}"
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&id).unwrap(), url.as_bytes());
    }
}
