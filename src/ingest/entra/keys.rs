//! The tenant's signing keys (a JWKS document), fetched on first use, kept for a day, and
//! fetched again when a token names a key not in it: Entra rotates keys without notice, and
//! a token signed by a new key must not be refused for a day. A refresh forced by an unknown
//! key happens at most once per `min_refresh`, so tokens naming made-up keys cannot turn
//! every delivery into a request to Entra.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use tokio::sync::{Mutex, RwLock};

/// A JWKS document larger than this is refused (Entra's is a few KiB).
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// How long a fetched key set is trusted before it is fetched again.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// One fetch may take this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {problem}")]
pub struct KeysError {
    url: String,
    problem: String,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

pub struct KeySet {
    url: String,
    client: reqwest::Client,
    cache: RwLock<Cache>,
    /// Serialises fetches: concurrent deliveries naming a new key wait for one fetch.
    fetching: Mutex<()>,
    min_refresh: Duration,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("url", &self.url).finish()
    }
}

impl KeySet {
    /// Keys read from `url`; an unknown key forces a new fetch at most once per `min_refresh`.
    pub fn new(url: String, min_refresh: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("the TLS backend initialises");
        Self {
            url,
            client,
            cache: RwLock::new(Cache::default()),
            fetching: Mutex::new(()),
            min_refresh,
        }
    }

    /// The key called `kid`, fetching the set when it is stale or lacks that key.
    pub async fn get(&self, kid: &str) -> Result<Option<DecodingKey>, KeysError> {
        if let Some(key) = self.fresh(kid).await {
            return Ok(Some(key));
        }
        let _turn = self.fetching.lock().await;
        // Another delivery may have fetched while this one waited for its turn.
        let fetched_at = {
            let cache = self.cache.read().await;
            if let Some(key) = cached(&cache, kid) {
                return Ok(Some(key));
            }
            cache.fetched_at
        };
        if fetched_at.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return Ok(None);
        }
        let keys = match self.fetch().await {
            Ok(keys) => keys,
            Err(err) => {
                // Entra out of reach: a key known from the last fetch still proves a token.
                let cache = self.cache.read().await;
                return match cache.keys.get(kid) {
                    Some(key) => {
                        tracing::warn!(error = %err, "Entra signing keys not refreshed; using the last ones");
                        Ok(Some(key.clone()))
                    }
                    None => Err(err),
                };
            }
        };
        let mut cache = self.cache.write().await;
        cache.keys = keys;
        cache.fetched_at = Some(Instant::now());
        Ok(cache.keys.get(kid).cloned())
    }

    async fn fresh(&self, kid: &str) -> Option<DecodingKey> {
        cached(&*self.cache.read().await, kid)
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, KeysError> {
        let fail = |problem: String| KeysError {
            url: self.url.clone(),
            problem,
        };
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|err| fail(err.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("answered {}", response.status())));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|err| fail(err.without_url().to_string()))?;
            if body.len() + piece.len() > MAX_DOCUMENT_BYTES {
                return Err(fail(format!(
                    "the key set is larger than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&piece);
        }
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|err| fail(format!("not a JWKS document: {err}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let signing = matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            );
            let rsa = matches!(jwk.algorithm, AlgorithmParameters::RSA(_));
            if let (true, true, Some(kid)) = (signing, rsa, &jwk.common.key_id) {
                // A key the library cannot use is skipped, not fatal: the others still serve.
                if let Ok(key) = DecodingKey::from_jwk(jwk) {
                    keys.insert(kid.clone(), key);
                }
            }
        }
        if keys.is_empty() {
            return Err(fail("the key set holds no RSA signing key".into()));
        }
        tracing::info!(url = %self.url, keys = keys.len(), "Entra signing keys fetched");
        Ok(keys)
    }
}

/// The key, if the set was fetched less than a day ago and holds it.
fn cached(cache: &Cache, kid: &str) -> Option<DecodingKey> {
    let fresh = cache.fetched_at.is_some_and(|at| at.elapsed() < MAX_AGE);
    fresh.then(|| cache.keys.get(kid).cloned()).flatten()
}
