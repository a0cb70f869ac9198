//! Azure Blob Storage and Azurite: building the client from `AZURE_STORAGE_*` and the storage
//! settings, and setting the sha256 metadata (and an Archive tier) once a block list is
//! committed.

mod properties;

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::azure::{AzureAuthorizer, AzureConfigKey, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path;
use url::Url;

use super::backend::{Finisher, OpenedStore};
use super::client::{self, client_config, http_client, is_plain_http, retry_config};
use super::options::{SHA256_METADATA, WriteOptions};
use super::settings::{AzureSettings, ObjectLock};
use super::{StorageError, StorageSettings};
pub use properties::BlobProperties;

mod lock;

/// Azurite's development account, published in its documentation (not a secret).
pub const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's development account key, published in its documentation (not a secret).
pub const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Where Azurite listens by default.
const EMULATOR_URL: &str = "http://127.0.0.1:10000";

/// Builds the Azure client; `extra` are object_store config pairs applied last (tests).
pub(super) fn open(
    settings: &StorageSettings,
    azure: &AzureSettings,
    extra: &[(&str, &str)],
) -> Result<OpenedStore, StorageError> {
    let mut builder = MicrosoftAzureBuilder::from_env()
        .with_container_name(&azure.container)
        .with_retry(retry_config());
    for (key, value) in client_config(settings.request_timeout_secs) {
        builder = builder.with_config(AzureConfigKey::Client(key), value);
    }
    for (key, value) in extra {
        let key: AzureConfigKey = key.parse()?;
        builder = builder.with_config(key, *value);
    }
    let config = |builder: &MicrosoftAzureBuilder, key| {
        builder
            .get_config_value(&key)
            .filter(|value| !value.is_empty())
    };
    let emulator = config(&builder, AzureConfigKey::UseEmulator).as_deref() == Some("true");
    let mut account = config(&builder, AzureConfigKey::AccountName);
    let mut endpoint = azure
        .endpoint
        .clone()
        .or_else(|| config(&builder, AzureConfigKey::Endpoint));
    if emulator {
        // object_store's emulator mode ignores a configured endpoint; an explicit endpoint
        // with the emulator's account does the same and honours storage.endpoint.
        let account = account.get_or_insert_with(|| EMULATOR_ACCOUNT.to_owned());
        endpoint.get_or_insert_with(|| {
            let base = std::env::var("AZURITE_BLOB_STORAGE_URL")
                .unwrap_or_else(|_| EMULATOR_URL.to_owned());
            format!("{}/{account}", base.trim_end_matches('/'))
        });
        builder = builder.with_use_emulator(false);
    }
    let endpoint_account = endpoint
        .as_deref()
        .and_then(|endpoint| Url::parse(endpoint).ok())
        .and_then(|url| url.path_segments()?.next().map(str::to_owned))
        .filter(|segment| segment == EMULATOR_ACCOUNT);
    let account = account.or(endpoint_account).ok_or_else(|| {
        StorageError::Request(
            "storage.kind = azure needs the storage account: set AZURE_STORAGE_ACCOUNT_NAME (or AZURE_STORAGE_USE_EMULATOR=true for Azurite)".into(),
        )
    })?;
    let has_credential = [
        AzureConfigKey::AccessKey,
        AzureConfigKey::SasKey,
        AzureConfigKey::Token,
        AzureConfigKey::ClientSecret,
        AzureConfigKey::FederatedTokenFile,
        AzureConfigKey::MsiEndpoint,
        AzureConfigKey::ObjectId,
        AzureConfigKey::UseAzureCli,
    ]
    .into_iter()
    .any(|key| config(&builder, key).is_some_and(|value| value != "false"));
    builder = builder.with_account(&account);
    if account == EMULATOR_ACCOUNT && !has_credential {
        builder = builder.with_access_key(EMULATOR_KEY);
    }
    if let Some(endpoint) = &endpoint {
        builder = builder.with_endpoint(endpoint.clone());
        if is_plain_http(endpoint) {
            builder = builder.with_allow_http(true);
        }
    }
    let service = Url::parse(
        endpoint
            .as_deref()
            .unwrap_or(&format!("https://{account}.blob.core.windows.net")),
    )
    .map_err(|err| StorageError::Request(format!("storage.endpoint: {err}")))?;
    let store = Arc::new(builder.build()?);
    let tier = azure.access_tier.map(str::to_owned);
    let class_after_metadata = tier.as_deref() == Some("Archive");
    Ok(OpenedStore {
        store: store.clone() as Arc<dyn ObjectStore>,
        part_size: settings.part_size_bytes,
        description: format!("azure://{account}/{} ({service})", azure.container),
        options: WriteOptions {
            metadata: true,
            storage_class: tier.clone(),
            class_after_metadata,
        },
        finisher: Finisher::Azure(AzureFinisher {
            store,
            account,
            service,
            container: azure.container.clone(),
            tier_after_metadata: tier.filter(|_| class_after_metadata),
            lock: settings.object_lock,
            content_md5: azure.content_md5,
            client: http_client(settings.request_timeout_secs)?,
        }),
    })
}

/// Sets blob metadata and tier with the Blob service's own operations.
pub(super) struct AzureFinisher {
    store: Arc<MicrosoftAzure>,
    account: String,
    /// The account's Blob service URL (its path holds the account for Azurite).
    service: Url,
    container: String,
    /// An Archive blob refuses new metadata, so the tier is set after it.
    tier_after_metadata: Option<String>,
    /// Version-level immutability: each committed blob gets its retention when locked at write.
    lock: Option<ObjectLock>,
    /// `storage.content_md5`: block-list blobs get their Content-MD5 set at commit.
    pub(super) content_md5: bool,
    client: reqwest::Client,
}

impl AzureFinisher {
    /// Sets `sha256` metadata on the committed blob (`e_tag` guards against a concurrent
    /// replacement), then the Archive tier when configured.
    pub async fn set_sha256(
        &self,
        key: &Path,
        sha256_hex: &str,
        e_tag: Option<&str>,
    ) -> Result<(), StorageError> {
        let metadata_header = format!("x-ms-meta-{SHA256_METADATA}");
        let mut headers = vec![(metadata_header.as_str(), sha256_hex)];
        if let Some(e_tag) = e_tag {
            headers.push(("If-Match", e_tag));
        }
        self.send(key, "metadata", &headers, "setting the sha256 metadata")
            .await?;
        if let Some(tier) = &self.tier_after_metadata {
            self.send(
                key,
                "tier",
                &[("x-ms-access-tier", tier)],
                "setting the access tier",
            )
            .await?;
        }
        if let Some(retention) = self.retention_at_write() {
            self.set_immutability(key, &retention).await?;
        }
        Ok(())
    }

    async fn send(
        &self,
        key: &Path,
        comp: &str,
        headers: &[(&str, &str)],
        what: &str,
    ) -> Result<(), StorageError> {
        let mut url = self.blob_url(key);
        url.query_pairs_mut().append_pair("comp", comp);
        let mut request = client::request(http::Method::PUT, &url, headers)?;
        let credential = self.store.credentials().get_credential().await?;
        AzureAuthorizer::new(&credential, &self.account).try_authorize(&mut request)?;
        client::send(&self.client, &request, what).await?;
        Ok(())
    }

    /// The same URL object_store uses: service, container, then the key's segments.
    fn blob_url(&self, key: &Path) -> Url {
        let mut url = self.service.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(&self.container);
            segments.extend(key.parts().map(|part| part.as_ref().to_owned()));
        }
        url
    }
}
