//! Azure version-level immutability: the start-up check that the container supports it, the
//! time-based retention policy set on each blob as it is committed, and legal holds.

use chrono::Utc;
use object_store::azure::AzureAuthorizer;
use object_store::path::Path;

use super::AzureFinisher;
use crate::storage::StorageError;
use crate::storage::client;
use crate::storage::lock::Retention;

/// The container property Azure reports when version-level immutability is enabled.
const IMMUTABLE_WITH_VERSIONING: &str = "x-ms-immutable-storage-with-versioning-enabled";

impl AzureFinisher {
    /// The retention a blob committed now gets, when blobs are locked at write.
    pub(crate) fn retention_at_write(&self) -> Option<Retention> {
        self.lock
            .filter(|lock| lock.at_write())
            .map(|lock| Retention::from(&lock, Utc::now()))
    }

    /// Refuses a container without version-level immutability: Azure would refuse every
    /// policy, and no blob would be protected.
    pub async fn check_immutability(&self) -> Result<(), StorageError> {
        let mut url = self.service.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(&self.container);
        }
        url.set_query(Some("restype=container"));
        let mut request = client::request(http::Method::GET, &url, &[])?;
        let credential = self.store.credentials().get_credential().await?;
        AzureAuthorizer::new(&credential, &self.account).try_authorize(&mut request)?;
        let what = format!("reading the properties of container {}", self.container);
        let response = self
            .client
            .request(http::Method::GET, url.as_str())
            .headers(request.headers().clone())
            .send()
            .await
            .map_err(|err| StorageError::Request(format!("{what}: {}", err.without_url())))?;
        if !response.status().is_success() {
            return Err(StorageError::Request(format!(
                "{what}: {}",
                response.status()
            )));
        }
        let enabled = response
            .headers()
            .get(IMMUTABLE_WITH_VERSIONING)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.eq_ignore_ascii_case("true"));
        if enabled {
            Ok(())
        } else {
            Err(StorageError::Request(format!(
                "container {} does not have version-level immutability (no `{IMMUTABLE_WITH_VERSIONING}: true`); storage.object_lock_mode needs it: enable blob versioning on the account and version-level immutability on the container (`az storage container-rm create … --enable-vlw`, or on the account at creation), or leave storage.object_lock_mode empty",
                self.container
            )))
        }
    }

    /// Sets a time-based retention policy on the blob's current version (Set Blob
    /// Immutability Policy).
    pub async fn set_immutability(
        &self,
        key: &Path,
        retention: &Retention,
    ) -> Result<(), StorageError> {
        let until = retention.azure_until();
        self.send(
            key,
            "immutabilityPolicies",
            &[
                ("x-ms-immutability-policy-until-date", &until),
                ("x-ms-immutability-policy-mode", retention.azure_mode()),
            ],
            "setting the immutability policy",
        )
        .await
    }

    /// Turns the blob's legal hold on or off (Set Blob Legal Hold).
    pub async fn set_legal_hold(&self, key: &Path, on: bool) -> Result<(), StorageError> {
        self.send(
            key,
            "legalhold",
            &[("x-ms-legal-hold", if on { "true" } else { "false" })],
            "setting the legal hold",
        )
        .await
    }
}
