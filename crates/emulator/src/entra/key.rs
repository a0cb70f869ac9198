//! The RSA key the emulator signs Entra tokens with: 2048 bits, made at start so nothing
//! secret is committed, named (`kid`) by a thumbprint of its public half, published as a JWK.

use aws_lc_rs::error::Unspecified;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) struct SigningKey {
    pair: KeyPair,
    kid: String,
    jwk: Value,
}

impl SigningKey {
    pub(crate) fn generate() -> Result<Self, Unspecified> {
        let pair = KeyPair::generate(KeySize::Rsa2048)?;
        let public = pair.public_key();
        // Entra's key ids are 27 characters of base64url: a 20-byte thumbprint.
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public.as_ref())[..20]);
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(public);
        let jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&components.n),
            "e": URL_SAFE_NO_PAD.encode(&components.e),
        });
        Ok(Self { pair, kid, jwk })
    }

    /// The public key, as a JWKS document lists it.
    pub(crate) fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// A compact JWS of `claims`: header `{"typ":"JWT","alg":"RS256","kid"}`, RS256 signature.
    pub(crate) fn sign_jwt(&self, claims: &Value) -> Result<String, Unspecified> {
        let header = json!({ "typ": "JWT", "alg": "RS256", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}
