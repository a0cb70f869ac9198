//! Tokens checked by `jsonwebtoken` (the library callvault verifies them with) against the
//! key set as served, and the refresh rule, on a clock the test sets.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use super::*;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUDIENCE: &str = "api://callvault-webhook";

fn entra(options: EntraOptions) -> Entra {
    let entra = Entra::default();
    entra.configure(Some(options)).unwrap();
    entra
}

/// The claims of `token`, verified against `key_set` for `audience` and `issuer`.
fn verified(token: &str, key_set: &Value, audience: &str, issuer: &str) -> Value {
    let kid = decode_header(token).unwrap().kid.unwrap();
    let set: JwkSet = serde_json::from_value(key_set.clone()).unwrap();
    let jwk = set.find(&kid).expect("the token's key is in the set");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation.validate_nbf = true;
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

#[test]
fn a_v2_token_verifies_against_the_served_key_set_with_the_claims_entra_gives_event_grid() {
    let entra = entra(EntraOptions::new(TENANT, AUDIENCE));
    let now = chrono::Utc::now().timestamp();
    let token = entra.bearer_at(now).unwrap();
    let key_set = entra.key_set(TENANT).unwrap();
    let claims = verified(
        &token,
        &key_set,
        AUDIENCE,
        &format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
    );
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["azp"], EVENT_GRID_APP_ID);
    assert_eq!(claims["roles"], serde_json::json!([EVENT_GRID_ROLE]));
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["nbf"], now);
    assert_eq!(claims["exp"], now + 15 * 60);
    assert_eq!(key_set["keys"][0]["kid"].as_str().unwrap().len(), 27);
}

#[test]
fn a_v1_token_has_the_sts_issuer_and_no_role_unless_asked() {
    let entra = entra(EntraOptions {
        token_version: TokenVersion::V1,
        event_grid_role: false,
        ..EntraOptions::new(TENANT, AUDIENCE)
    });
    let token = entra.bearer_at(chrono::Utc::now().timestamp()).unwrap();
    let claims = verified(
        &token,
        &entra.key_set(TENANT).unwrap(),
        AUDIENCE,
        &format!("https://sts.windows.net/{TENANT}/"),
    );
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["appid"], EVENT_GRID_APP_ID);
    assert!(claims.get("roles").is_none());
}

#[test]
fn a_token_is_reused_until_a_third_of_its_life_is_left_then_replaced() {
    let entra = entra(EntraOptions::new(TENANT, AUDIENCE));
    let start = 1_800_000_000;
    let first = entra.bearer_at(start).unwrap();
    // 15 minutes of life: reused for the first 10, replaced after.
    assert_eq!(entra.bearer_at(start + 599).unwrap(), first);
    let second = entra.bearer_at(start + 601).unwrap();
    assert_ne!(second, first);
    assert_eq!(entra.bearer_at(start + 700).unwrap(), second);
}

#[test]
fn changing_the_audience_keeps_the_key_and_mints_anew() {
    let entra = entra(EntraOptions::new(TENANT, AUDIENCE));
    let now = chrono::Utc::now().timestamp();
    let before = entra.key_set(TENANT).unwrap();
    let first = entra.bearer_at(now).unwrap();
    entra
        .configure(Some(EntraOptions::new(TENANT, "api://another-app")))
        .unwrap();
    assert_eq!(entra.key_set(TENANT).unwrap(), before);
    let second = entra.bearer_at(now).unwrap();
    assert_ne!(first, second);
    let claims = verified(
        &second,
        &before,
        "api://another-app",
        &format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
    );
    assert_eq!(claims["aud"], "api://another-app");
    entra.configure(None).unwrap();
    assert!(entra.bearer_at(now).is_none());
    assert!(entra.key_set(TENANT).is_none());
}

#[test]
fn options_are_bounded() {
    let entra = Entra::default();
    let refused = |options: EntraOptions| entra.configure(Some(options)).unwrap_err();
    assert_eq!(refused(EntraOptions::new("", AUDIENCE)), EntraError::Tenant);
    assert_eq!(
        refused(EntraOptions::new("a/b", AUDIENCE)),
        EntraError::Tenant
    );
    assert_eq!(
        refused(EntraOptions::new(TENANT, " ")),
        EntraError::Audience
    );
    assert_eq!(
        refused(EntraOptions::new(TENANT, "x".repeat(2000))),
        EntraError::Audience
    );
    assert_eq!(
        refused(EntraOptions {
            token_lifetime: Duration::from_secs(5),
            ..EntraOptions::new(TENANT, AUDIENCE)
        }),
        EntraError::Lifetime
    );
    assert!(entra.options().is_none(), "nothing refused was kept");
}
