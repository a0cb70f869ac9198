//! Test helpers for the real servers `./scripts/test.sh` starts (moto for S3, Azurite for
//! Azure Blob): fresh buckets and containers, settings, and a private moto for outages.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::azure::AzureAuthorizer;
use object_store::path::Path;

use crate::config::Settings;
use crate::storage::StorageSettings;
use crate::storage::azure::{EMULATOR_ACCOUNT, EMULATOR_KEY};
use crate::storage::{Archive, client};
use crate::test_services::service;

/// Part size of the tests: the smallest S3 allows, so a few MiB exercise multipart uploads.
pub const PART: usize = 5 * 1024 * 1024;

/// moto accepts any credentials; object_store would otherwise look for instance credentials.
pub const S3_CREDENTIALS: &[(&str, &str)] = &[
    ("aws_access_key_id", "callvault-test"),
    ("aws_secret_access_key", "callvault-test"),
];

/// `http://127.0.0.1:PORT` of the shared moto, or `None` when the S3 tests are skipped.
pub fn s3_endpoint() -> Option<String> {
    service("CALLVAULT_TEST_S3_ENDPOINT", "S3 (moto)")
}

/// `http://127.0.0.1:PORT/devstoreaccount1` of the shared Azurite, or `None` when the Azure
/// tests are skipped.
pub fn azure_endpoint() -> Option<String> {
    service("CALLVAULT_TEST_AZURE_ENDPOINT", "Azure Blob (Azurite)")
}

/// A name no other test uses.
pub fn unique_name() -> String {
    format!("cv-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Storage settings with `overrides` on top of the defaults.
pub fn storage_settings(overrides: &[(&str, String)]) -> StorageSettings {
    let mut all = vec![("storage.part_size_bytes", PART.to_string())];
    all.extend(overrides.iter().cloned());
    Settings::defaults_with(&all)
        .unwrap()
        .storage
        .validate()
        .unwrap()
}

/// Creates a bucket on moto (which needs no signature for it) and returns its name.
pub async fn fresh_bucket(endpoint: &str) -> String {
    let bucket = unique_name();
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("moto answers");
    assert!(
        response.status().is_success(),
        "creating bucket {bucket}: {}",
        response.status()
    );
    bucket
}

/// An archive on a fresh bucket of the moto at `endpoint`, with extra settings.
pub async fn s3_archive_at(endpoint: &str, overrides: &[(&str, String)]) -> (Archive, String) {
    let bucket = fresh_bucket(endpoint).await;
    let mut all = vec![
        ("storage.kind", "s3".to_owned()),
        ("storage.bucket", bucket.clone()),
        ("storage.endpoint", endpoint.to_owned()),
        ("storage.region", "us-east-1".to_owned()),
    ];
    all.extend(overrides.iter().cloned());
    let archive = Archive::open_with(&storage_settings(&all), S3_CREDENTIALS)
        .await
        .expect("the S3 archive opens");
    (archive, bucket)
}

/// An archive on a fresh bucket of the shared moto (`None`: skipped).
pub async fn s3_archive(overrides: &[(&str, String)]) -> Option<(Archive, String)> {
    Some(s3_archive_at(&s3_endpoint()?, overrides).await)
}

/// Creates a container on Azurite with a Shared Key signed request and returns its name.
pub async fn fresh_container(endpoint: &str) -> String {
    let container = unique_name();
    create_container(endpoint, &container).await;
    container
}

/// Creates `container` on the Azurite at `endpoint` with a Shared Key signed request.
pub async fn create_container(endpoint: &str, container: &str) {
    let url = url::Url::parse(&format!("{endpoint}/{container}?restype=container")).unwrap();
    let mut request = client::request(http::Method::PUT, &url, &[]).unwrap();
    let credential = object_store::azure::AzureCredential::AccessKey(
        object_store::azure::AzureAccessKey::try_new(EMULATOR_KEY).unwrap(),
    );
    AzureAuthorizer::new(&credential, EMULATOR_ACCOUNT)
        .try_authorize(&mut request)
        .unwrap();
    client::send(&reqwest::Client::new(), &request, "creating a container")
        .await
        .expect("Azurite creates the container");
}

/// An archive on a fresh container of the shared Azurite, reached through the well-known
/// development account that its endpoint names.
pub async fn azure_archive(overrides: &[(&str, String)]) -> Option<(Archive, String)> {
    Some(azure_archive_at(&azure_endpoint()?, overrides).await)
}

/// An archive on a fresh container of the Azurite at `endpoint` (`…/devstoreaccount1`).
pub async fn azure_archive_at(endpoint: &str, overrides: &[(&str, String)]) -> (Archive, String) {
    let endpoint = endpoint.to_owned();
    let container = fresh_container(&endpoint).await;
    let mut all = vec![
        ("storage.kind", "azure".to_owned()),
        ("storage.container", container.clone()),
        ("storage.endpoint", endpoint),
    ];
    all.extend(overrides.iter().cloned());
    let archive = Archive::open(&storage_settings(&all))
        .await
        .expect("the Azure archive opens");
    (archive, container)
}

/// Deterministic bytes that differ from part to part, so a misplaced part shows.
pub fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect::<Vec<_>>()
        .into()
}

/// Feeds `data` to a writer in pieces of assorted sizes, one of them larger than a part.
pub async fn write_in_pieces(writer: &mut crate::storage::ObjectWriter, data: &Bytes) {
    let sizes = [1, 1000, 64 * 1024, PART + 3, 333_333, 2 * 1024 * 1024];
    let mut offset = 0;
    for size in sizes.iter().cycle() {
        if offset >= data.len() {
            break;
        }
        let end = (offset + size).min(data.len());
        writer.write(data.slice(offset..end)).await.unwrap();
        offset = end;
    }
}

/// Everything stored at `key`.
pub async fn read_back(archive: &Archive, key: &Path) -> Bytes {
    archive.read(key).await.expect("the object reads back")
}

/// A server of the test's own (moto or Azurite), which it may stop and start again on the
/// same port.
pub struct PrivateServer {
    pub port: u16,
    program: String,
    args: Vec<String>,
    /// Answers 2xx (moto) or any HTTP status (Azurite) once the server is up.
    probe: String,
    child: Option<Child>,
    _data: Option<tempfile::TempDir>,
}

impl PrivateServer {
    /// moto on a free port; its state lives in memory, so a restart empties it. `None` when
    /// the S3 tests are skipped (`./scripts/test.sh` installs moto when it starts the shared one).
    pub async fn moto() -> Option<Self> {
        s3_endpoint()?;
        let port = free_port();
        let server = Self::start(
            port,
            "moto_server".into(),
            vec![
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
            format!("http://127.0.0.1:{port}/moto-api/"),
            None,
        )
        .await;
        Some(server)
    }

    /// Azurite (installed by ./scripts/test.sh) on a free port, keeping its data in a temporary
    /// folder (a killed Azurite loses what it had not flushed yet). `None` when the Azure tests
    /// are skipped.
    pub async fn azurite() -> Option<Self> {
        azure_endpoint()?;
        let port = free_port();
        let program = format!(
            "{}/.tools/node_modules/.bin/azurite-blob",
            env!("CARGO_MANIFEST_DIR")
        );
        let data = tempfile::tempdir().unwrap();
        let args = [
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
            &data.path().display().to_string(),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ]
        .map(str::to_owned)
        .to_vec();
        let probe = format!("http://127.0.0.1:{port}/{EMULATOR_ACCOUNT}?comp=list");
        Some(Self::start(port, program, args, probe, Some(data)).await)
    }

    async fn start(
        port: u16,
        program: String,
        args: Vec<String>,
        probe: String,
        data: Option<tempfile::TempDir>,
    ) -> Self {
        let mut server = Self {
            port,
            program,
            args,
            probe,
            child: None,
            _data: data,
        };
        server.restart().await;
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server: connections are reset and new ones refused.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "{} does not run ({err}): run ./scripts/test.sh, which installs moto and Azurite",
                    self.program
                )
            });
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if reqwest::get(&self.probe).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "{} did not answer on port {} within 30 s",
            self.program, self.port
        );
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The headers Azurite answers a signed HEAD of a blob with (metadata, tier).
pub async fn azure_blob_headers(container: &str, key: &Path) -> reqwest::header::HeaderMap {
    let endpoint = azure_endpoint().expect("the Azure tests run");
    let url = url::Url::parse(&format!("{endpoint}/{container}/{key}")).unwrap();
    let mut request = client::request(http::Method::HEAD, &url, &[]).unwrap();
    let credential = object_store::azure::AzureCredential::AccessKey(
        object_store::azure::AzureAccessKey::try_new(EMULATOR_KEY).unwrap(),
    );
    AzureAuthorizer::new(&credential, EMULATOR_ACCOUNT)
        .try_authorize(&mut request)
        .unwrap();
    let response = reqwest::Client::new()
        .head(url)
        .headers(request.headers().clone())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.headers().clone()
}

/// The headers moto answers a signed HEAD of an object with (metadata, class, encryption).
pub async fn s3_object_headers(bucket: &str, key: &Path) -> reqwest::header::HeaderMap {
    let endpoint = s3_endpoint().expect("the S3 tests run");
    let url = url::Url::parse(&format!("{endpoint}/{bucket}/{key}")).unwrap();
    let mut request = client::request(http::Method::HEAD, &url, &[]).unwrap();
    let credential = object_store::aws::AwsCredential {
        key_id: S3_CREDENTIALS[0].1.to_owned(),
        secret_key: S3_CREDENTIALS[1].1.to_owned(),
        token: None,
    };
    object_store::aws::AwsAuthorizer::new(&credential, "s3", "us-east-1")
        .try_authorize(&mut request, None)
        .unwrap();
    let response = reqwest::Client::new()
        .head(url)
        .headers(request.headers().clone())
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "HEAD {key}: {}",
        response.status()
    );
    response.headers().clone()
}
