//! WORM retention and legal holds, as the stores spell them: the retain-until date of an
//! object locked now, and the S3 and Azure names of the modes.

use chrono::{DateTime, SecondsFormat, Utc};

use super::settings::{LockMode, ObjectLock};

/// The retention one object gets: its mode and the instant until which it cannot be deleted
/// or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub mode: LockMode,
    pub until: DateTime<Utc>,
}

impl Retention {
    /// The retention of an object locked at `now` under `lock`.
    pub fn from(lock: &ObjectLock, now: DateTime<Utc>) -> Self {
        Self {
            mode: lock.mode,
            until: now + chrono::Duration::days(i64::from(lock.days)),
        }
    }

    /// `x-amz-object-lock-mode` and the `<Mode>` of PutObjectRetention.
    pub fn s3_mode(&self) -> &'static str {
        match self.mode {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }

    /// `x-ms-immutability-policy-mode`: only a locked policy resists the account owner.
    pub fn azure_mode(&self) -> &'static str {
        match self.mode {
            LockMode::Governance => "Unlocked",
            LockMode::Compliance => "Locked",
        }
    }

    /// ISO 8601 in UTC to the second, as S3 takes `x-amz-object-lock-retain-until-date`.
    pub fn s3_until(&self) -> String {
        self.until.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// RFC 1123, as Azure takes `x-ms-immutability-policy-until-date`.
    pub fn azure_until(&self) -> String {
        self.until.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
    }

    /// The body of S3 PutObjectRetention.
    pub fn s3_retention_xml(&self) -> String {
        format!(
            r#"<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Mode>{}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>"#,
            self.s3_mode(),
            self.s3_until()
        )
    }
}

/// The body of S3 PutObjectLegalHold.
pub fn s3_legal_hold_xml(on: bool) -> String {
    format!(
        r#"<LegalHold xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>{}</Status></LegalHold>"#,
        if on { "ON" } else { "OFF" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_runs_its_days_from_the_lock_and_is_spelled_per_store() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T20:21:41.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let lock = ObjectLock {
            mode: LockMode::Compliance,
            days: 2555,
            after_hours: 0,
        };
        let retention = Retention::from(&lock, now);
        assert_eq!(retention.s3_until(), "2033-11-30T20:21:41Z");
        assert_eq!(retention.azure_until(), "Wed, 30 Nov 2033 20:21:41 GMT");
        assert_eq!(retention.s3_mode(), "COMPLIANCE");
        assert_eq!(retention.azure_mode(), "Locked");
        assert!(
            retention
                .s3_retention_xml()
                .contains("<Mode>COMPLIANCE</Mode><RetainUntilDate>2033-11-30T20:21:41Z<")
        );
        let governance = Retention::from(
            &ObjectLock {
                mode: LockMode::Governance,
                ..lock
            },
            now,
        );
        assert_eq!(
            (governance.s3_mode(), governance.azure_mode()),
            ("GOVERNANCE", "Unlocked")
        );
        assert!(s3_legal_hold_xml(false).contains("<Status>OFF</Status>"));
    }
}
