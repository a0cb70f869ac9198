//! Signed manifests: an Ed25519 signature over the manifest's canonical bytes, and the link of
//! the hash chain it carries (the sha256 of the manifest this deployment wrote before it).
//!
//! The canonical bytes are the manifest as stored, `signature.value` removed, serialised per
//! RFC 8785 (JSON Canonicalization Scheme): keys sorted by UTF-16 code units, no whitespace,
//! strings and numbers as ECMAScript prints them. Any language with a JCS library and Ed25519
//! can check a manifest with nothing but its bytes and the public key (docs/storage.md).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::manifest::Manifest;
use super::settings::InvalidSetting;
use crate::secret::Secret;

/// The only algorithm a manifest is signed with.
pub const ALGORITHM: &str = "Ed25519";
/// The setting that holds the private key.
pub const SIGNING_KEY_SETTING: &str = "storage.manifest_signing_key";

/// The `signature` member of a signed manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSignature {
    /// Always `Ed25519`.
    pub algorithm: String,
    /// The signer's public key, standard base64 of its 32 bytes.
    pub public_key: String,
    /// The sha256 (lowercase hex) of the stored bytes of the manifest this deployment wrote
    /// before this one; null for the first manifest of the chain.
    pub previous_manifest_sha256: Option<String>,
    /// The links of the manifests that this one replaced at the same key (a manifest rewritten
    /// for a late chunk), oldest first, so the chain can be walked although they are gone.
    #[serde(default)]
    pub earlier_versions: Vec<EarlierVersion>,
    /// Standard base64 of the 64-byte Ed25519 signature over the canonical bytes; absent only
    /// while those bytes are computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The chain link of a manifest that a later one replaced at its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EarlierVersion {
    pub sha256: String,
    pub previous_manifest_sha256: Option<String>,
}

/// Where a new manifest goes in the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainPosition {
    /// The sha256 of the chain's head, None when the chain is empty.
    pub previous: Option<String>,
    /// The links written earlier at the same key, oldest first.
    pub earlier_versions: Vec<EarlierVersion>,
}

/// The manifest with its signature member last, in the order it is stored.
#[derive(Serialize)]
struct Signed<'a> {
    #[serde(flatten)]
    manifest: &'a Manifest,
    signature: &'a ManifestSignature,
}

/// The private key that signs manifests. Its Debug output shows the public key only.
#[derive(Clone)]
pub struct ManifestSigner {
    key: SigningKey,
}

impl fmt::Debug for ManifestSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManifestSigner(public key {})", self.public_key())
    }
}

impl PartialEq for ManifestSigner {
    fn eq(&self, other: &Self) -> bool {
        self.key.verifying_key() == other.key.verifying_key()
    }
}

impl Eq for ManifestSigner {}

impl ManifestSigner {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        use rand::TryRngCore;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .expect("the operating system's random generator works");
        Self::from_seed(seed)
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads the setting's shape: standard base64 of the 32-byte Ed25519 seed (RFC 8032's
    /// private key). The messages never repeat the value.
    pub fn from_setting(value: &Secret) -> Result<Self, InvalidSetting> {
        let text = value.expose().trim();
        let bytes = BASE64.decode(text).map_err(|_| {
            InvalidSetting::new(
                SIGNING_KEY_SETTING,
                "is not standard base64; it must be the base64 of a 32-byte Ed25519 private key, as `callvault keys generate` prints",
            )
        })?;
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            InvalidSetting::new(
                SIGNING_KEY_SETTING,
                format!(
                    "decodes to {} bytes; an Ed25519 private key is 32 bytes (`callvault keys generate` prints one)",
                    bytes.len()
                ),
            )
        })?;
        Ok(Self::from_seed(seed))
    }

    /// The setting's value for this key (base64 of the seed).
    pub fn private_key_setting(&self) -> Secret {
        Secret::new(BASE64.encode(self.key.to_bytes()))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// The stored bytes of `manifest` signed at `position`: pretty-printed JSON whose last
    /// member is `signature`.
    pub fn sign(&self, manifest: &Manifest, position: ChainPosition) -> Vec<u8> {
        let mut signature = ManifestSignature {
            algorithm: ALGORITHM.to_owned(),
            public_key: self.public_key().to_string(),
            previous_manifest_sha256: position.previous,
            earlier_versions: position.earlier_versions,
            value: None,
        };
        let unsigned = serde_json::to_value(Signed {
            manifest,
            signature: &signature,
        })
        .expect("a manifest always serialises");
        let canonical =
            canonical_bytes(&unsigned).expect("a manifest has no unrepresentable number");
        signature.value = Some(BASE64.encode(self.key.sign(&canonical).to_bytes()));
        serde_json::to_vec_pretty(&Signed {
            manifest,
            signature: &signature,
        })
        .expect("a manifest always serialises")
    }
}

/// An Ed25519 public key; text form is standard base64 of its 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl std::str::FromStr for PublicKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bytes = BASE64.decode(text.trim()).map_err(|_| {
            "a public key is the standard base64 of 32 bytes, as `callvault keys generate` prints"
                .to_owned()
        })?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "the public key decodes to {} bytes; an Ed25519 public key is 32",
                bytes.len()
            )
        })?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| "the public key is not a point of the Ed25519 curve".to_owned())
    }
}

/// RFC 8785 canonical JSON of `value`.
pub fn canonical_bytes(value: &Value) -> Result<Vec<u8>, serde_json::Error> {
    serde_json_canonicalizer::to_vec(value)
}

/// What the signature of one stored manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by the trusted key over exactly these contents.
    SignedOk,
    /// There is a signature member, and it does not prove these contents came from the
    /// trusted key; the text says why.
    Invalid(String),
    /// No signature member.
    Unsigned,
}

/// One stored manifest as the chain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealCheck {
    /// sha256 (lowercase hex) of the stored bytes.
    pub sha256: String,
    pub verdict: Verdict,
    /// The chain link the signature member claims, when it is readable (even if the
    /// signature is invalid: the verdict reports that).
    pub signature: Option<ManifestSignature>,
}

/// Checks the stored bytes of a manifest against the trusted public key.
pub fn check(bytes: &[u8], trusted: &PublicKey) -> SealCheck {
    use sha2::{Digest, Sha256};
    let sha256 = hex::encode(Sha256::digest(bytes));
    let (verdict, signature) = judge(bytes, trusted);
    SealCheck {
        sha256,
        verdict,
        signature,
    }
}

fn judge(bytes: &[u8], trusted: &PublicKey) -> (Verdict, Option<ManifestSignature>) {
    let mut value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(err) => return (Verdict::Invalid(format!("not JSON: {err}")), None),
    };
    let Some(object) = value.as_object_mut() else {
        return (Verdict::Invalid("not a JSON object".to_owned()), None);
    };
    let Some(member) = object.get_mut("signature") else {
        return (Verdict::Unsigned, None);
    };
    let signature: ManifestSignature = match serde_json::from_value(member.clone()) {
        Ok(signature) => signature,
        Err(err) => {
            return (
                Verdict::Invalid(format!("the signature member is unreadable: {err}")),
                None,
            );
        }
    };
    // The signed bytes are the manifest without the signature's value.
    if let Some(member) = member.as_object_mut() {
        member.remove("value");
    }
    let verdict = verify(&value, &signature, trusted);
    (verdict, Some(signature))
}

/// Checks `signature` over `unsigned`, the manifest without its signature value.
fn verify(unsigned: &Value, signature: &ManifestSignature, trusted: &PublicKey) -> Verdict {
    let invalid = |reason: &str| Verdict::Invalid(reason.to_owned());
    if signature.algorithm != ALGORITHM {
        return Verdict::Invalid(format!(
            "algorithm `{}`, only {ALGORITHM} is accepted",
            signature.algorithm
        ));
    }
    if signature.public_key != trusted.to_string() {
        return Verdict::Invalid(format!(
            "signed with public key {}, not the trusted {trusted}",
            signature.public_key
        ));
    }
    let Some(encoded) = &signature.value else {
        return invalid("the signature member has no value");
    };
    let Some(raw) = BASE64
        .decode(encoded)
        .ok()
        .and_then(|raw| <[u8; 64]>::try_from(raw.as_slice()).ok())
    else {
        return invalid("the signature value is not the base64 of 64 bytes");
    };
    let Ok(canonical) = canonical_bytes(unsigned) else {
        return invalid("the manifest has a number JSON cannot represent");
    };
    match trusted
        .0
        .verify_strict(&canonical, &Signature::from_bytes(&raw))
    {
        Ok(()) => Verdict::SignedOk,
        Err(_) => invalid(
            "the signature does not match the contents: the manifest was changed after it was signed",
        ),
    }
}

#[cfg(test)]
mod tests;
