//! An Azure Storage Queue that events are delivered into, as an Event Grid subscription with a
//! storage queue destination names it: the queue's URL and how requests to it are authorised
//! (the account's Shared Key, or a SAS). Secrets never reach `Debug` or `Display`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use callvault_acs_protocol::storage_shared_key::{AZURITE_ACCOUNT, AZURITE_KEY, account_of};

/// A queue URL longer than this is refused unread.
const MAX_URL_BYTES: usize = 2048;
/// A SAS token longer than this is refused (real ones are a few hundred bytes).
const MAX_SAS_BYTES: usize = 4096;

/// How requests to the queue prove they may put messages.
#[derive(Clone)]
pub(crate) enum QueueCredential {
    /// Signed with the account's key (raw bytes, decoded from base64).
    SharedKey { account: String, key: Vec<u8> },
    /// A SAS token, its query string without `?`, appended to every request.
    Sas(String),
}

/// One queue the emulator puts every recording event into.
#[derive(Clone)]
pub struct QueueDestination {
    /// `https://ACCOUNT.queue.core.windows.net/QUEUE` or Azurite's
    /// `http://127.0.0.1:10001/devstoreaccount1/QUEUE`, without a query string.
    pub(crate) url: url::Url,
    pub(crate) credential: QueueCredential,
}

/// Why a queue destination cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueDestinationError {
    #[error("the queue URL `{0}` is not an http(s) URL naming an account and a queue")]
    Url(String),
    #[error(
        "no credential for the queue of account `{0}`: give its account key (base64) or a SAS token"
    )]
    NoCredential(String),
    #[error("the queue account key is not a non-empty base64 string")]
    Key,
    #[error("the SAS token is empty, longer than {MAX_SAS_BYTES} bytes, or holds no `sig`")]
    Sas,
}

impl QueueDestination {
    /// The queue at `url`, authorised by `sas` when given (or a SAS in `url`'s own query
    /// string), else by `account_key` (base64), else, for Azurite's `devstoreaccount1`, by
    /// its published key.
    pub fn new(
        url: &str,
        account_key: Option<&str>,
        sas: Option<&str>,
    ) -> Result<Self, QueueDestinationError> {
        let refused = || QueueDestinationError::Url(shown(url));
        if url.len() > MAX_URL_BYTES {
            return Err(refused());
        }
        let mut parsed = url::Url::parse(url.trim()).map_err(|_| refused())?;
        let embedded_sas = parsed.query().map(str::to_owned);
        parsed.set_query(None);
        parsed.set_fragment(None);
        if !matches!(parsed.scheme(), "http" | "https") || queue_name(&parsed).is_none() {
            return Err(refused());
        }
        let sas = sas
            .map(str::to_owned)
            .or(embedded_sas)
            .map(|sas| sas.trim().trim_start_matches('?').to_owned());
        let credential = match sas {
            Some(sas) => {
                let signed = sas.split('&').any(|pair| pair.starts_with("sig="));
                if sas.len() > MAX_SAS_BYTES || !signed {
                    return Err(QueueDestinationError::Sas);
                }
                QueueCredential::Sas(sas)
            }
            None => {
                let account = account_of(&parsed);
                let key = match account_key {
                    Some(key) => STANDARD
                        .decode(key.trim())
                        .ok()
                        .filter(|key| !key.is_empty())
                        .ok_or(QueueDestinationError::Key)?,
                    None if account == AZURITE_ACCOUNT => STANDARD
                        .decode(AZURITE_KEY)
                        .expect("the published key is base64"),
                    None => return Err(QueueDestinationError::NoCredential(account)),
                };
                QueueCredential::SharedKey { account, key }
            }
        };
        Ok(Self {
            url: parsed,
            credential,
        })
    }

    /// The queue's URL, without any SAS.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// `…/QUEUE/messages`, where Put Message posts.
    pub(crate) fn messages_url(&self) -> url::Url {
        let mut url = self.url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("messages");
        }
        url
    }
}

/// The queue's name, valid by Azure's rules (3–63 lowercase letters, digits and hyphens): the
/// only path segment, or the second after the account of a path-style URL (an IP address or
/// localhost, as Azurite serves).
fn queue_name(url: &url::Url) -> Option<&str> {
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let path_style = !matches!(
        url.host(),
        Some(url::Host::Domain(name)) if !name.eq_ignore_ascii_case("localhost")
    );
    let expected = if path_style { 2 } else { 1 };
    let name = *segments.last()?;
    let valid = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (segments.len() == expected && valid).then_some(name)
}

/// A URL as it may be logged: without its query string (which may hold a SAS).
fn shown(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or_default();
    without_query.chars().take(200).collect()
}

impl std::fmt::Display for QueueDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl std::fmt::Debug for QueueDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credential = match &self.credential {
            QueueCredential::SharedKey { account, .. } => format!("SharedKey({account})"),
            QueueCredential::Sas(_) => "Sas(<redacted>)".to_owned(),
        };
        f.debug_struct("QueueDestination")
            .field("url", &self.url.as_str())
            .field("credential", &credential)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azurite_needs_no_key_and_another_account_does() {
        let azurite = QueueDestination::new(
            "http://127.0.0.1:10001/devstoreaccount1/recordings",
            None,
            None,
        )
        .unwrap();
        assert!(matches!(
            &azurite.credential,
            QueueCredential::SharedKey { account, .. } if account == "devstoreaccount1"
        ));
        assert_eq!(
            azurite.messages_url().as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/recordings/messages"
        );
        assert_eq!(
            QueueDestination::new("https://acme.queue.core.windows.net/recordings", None, None)
                .unwrap_err(),
            QueueDestinationError::NoCredential("acme".into())
        );
        assert_eq!(
            QueueDestination::new(
                "https://acme.queue.core.windows.net/recordings",
                Some("not base64!"),
                None
            )
            .unwrap_err(),
            QueueDestinationError::Key
        );
    }

    #[test]
    fn a_sas_in_the_url_is_used_and_never_shown() {
        let destination = QueueDestination::new(
            "https://acme.queue.core.windows.net/recordings?sv=2021-08-06&sp=a&sig=SECRETSIG",
            None,
            None,
        )
        .unwrap();
        assert!(
            matches!(&destination.credential, QueueCredential::Sas(sas) if sas.contains("sig=SECRETSIG"))
        );
        assert_eq!(
            destination.to_string(),
            "https://acme.queue.core.windows.net/recordings"
        );
        assert!(!format!("{destination:?}").contains("SECRETSIG"));
        assert_eq!(
            QueueDestination::new(
                "https://acme.queue.core.windows.net/recordings",
                None,
                Some("sv=2021-08-06&sp=a")
            )
            .unwrap_err(),
            QueueDestinationError::Sas
        );
    }

    #[test]
    fn a_url_must_name_one_valid_queue() {
        for url in [
            "ftp://acme.queue.core.windows.net/recordings",
            "https://acme.queue.core.windows.net/",
            "https://acme.queue.core.windows.net/Recordings",
            "https://acme.queue.core.windows.net/a/b",
            "http://127.0.0.1:10001/devstoreaccount1",
            "not a url",
        ] {
            let err = QueueDestination::new(url, Some("a2V5"), None).unwrap_err();
            assert!(matches!(err, QueueDestinationError::Url(_)), "{url}: {err}");
        }
        let long = format!("https://acme.queue.core.windows.net/{}", "q".repeat(3000));
        assert!(QueueDestination::new(&long, Some("a2V5"), None).is_err());
    }
}
