//! The archive against real stores: a local folder here, moto and Azurite (started by
//! `./scripts/test.sh`) in `s3` and `azure`, each running the shared `scenarios`.

mod azure;
mod azure_lock;
pub mod boto;
mod immutable_azure;
mod integrity;
pub mod proxy;
mod s3;
mod s3_lock;
mod scenarios;
pub mod servers;
mod uploads;

use scenarios as scenario;
use servers::storage_settings;

#[tokio::test]
async fn a_metadata_document_in_a_local_folder_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let settings = storage_settings(&[("storage.path", dir.path().display().to_string())]);
    let archive = super::Archive::open(&settings).await.unwrap();
    scenario::a_metadata_document_is_never_replaced(&archive).await;
}
