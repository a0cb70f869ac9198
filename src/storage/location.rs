//! Where the archive is, as an event names it for a consumer that fetches the files.

use serde::Serialize;

use super::{StorageBackend, StorageSettings};

/// The store and the place in it every archived key is relative to. No credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageLocation {
    /// `local`, `s3` or `azure`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The folder (`file://…`), the S3 endpoint, or the Azure account's blob endpoint; absent
    /// when it is the provider's default and the account is not known here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Already part of every key.
    pub prefix: String,
}

impl StorageLocation {
    pub fn of(settings: &StorageSettings) -> Self {
        let (kind, bucket, container, url) = match &settings.backend {
            StorageBackend::Local(local) => {
                let path = std::path::absolute(&local.path).unwrap_or_else(|_| local.path.clone());
                let url = url::Url::from_directory_path(&path).map(String::from).ok();
                ("local", None, None, url)
            }
            StorageBackend::S3(s3) => ("s3", Some(s3.bucket.clone()), None, s3.endpoint.clone()),
            StorageBackend::Azure(azure) => {
                let url = azure.endpoint.clone().or_else(|| {
                    std::env::var("AZURE_STORAGE_ACCOUNT_NAME")
                        .ok()
                        .map(|account| format!("https://{account}.blob.core.windows.net"))
                });
                ("azure", None, Some(azure.container.clone()), url)
            }
        };
        Self {
            kind,
            bucket,
            container,
            url,
            prefix: settings.prefix.clone(),
        }
    }
}
