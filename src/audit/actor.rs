//! Who did it: a named admin token with its role, the local command line, or callvault itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads only: every `GET` of the admin API and the operator page.
    Viewer,
    /// Reads and acts: replay, holds, quarantine replay, export, erasure.
    Operator,
}

/// A role name that is neither `viewer` nor `operator`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role (viewer or operator)")]
pub struct UnknownRole(pub String);

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    /// True when this role may change something (anything but a read).
    pub fn may_act(self) -> bool {
        self == Role::Operator
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// Who acts: the name recorded in the audit trail, and what it may do. Token names cannot
/// hold `:`, so `cli:…` and `system:…` never pass for a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

/// At most this many bytes of a user name from `$USER`.
const MAX_USER_BYTES: usize = 64;

impl Actor {
    /// The holder of the admin token called `name`.
    pub fn token(name: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            role,
        }
    }

    /// A command run on the host, which needs no token: `cli:<$USER>`. Whoever can run the
    /// binary with the configuration can act, so the role is operator.
    pub fn cli() -> Self {
        Self::cli_user(std::env::var("USER").ok().as_deref())
    }

    fn cli_user(user: Option<&str>) -> Self {
        let user: String = user
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(MAX_USER_BYTES)
            .collect();
        let user = if user.is_empty() { "unknown" } else { &user };
        Self::token(format!("cli:{user}"), Role::Operator)
    }

    /// callvault itself (`system:worker`, `system:verifier`, …), for what no person asked for.
    pub fn system(part: &str) -> Self {
        Self::token(format!("system:{part}"), Role::Operator)
    }

    /// The archiving worker.
    pub fn worker() -> Self {
        Self::system("worker")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_only_operators_act() {
        for role in [Role::Viewer, Role::Operator] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!("admin".parse::<Role>(), Err(UnknownRole("admin".into())));
        assert!(Role::Operator.may_act() && !Role::Viewer.may_act());
    }

    #[test]
    fn the_command_line_actor_names_the_user_printably_and_boundedly() {
        assert_eq!(Actor::cli_user(Some("alice")).name, "cli:alice");
        assert_eq!(Actor::cli_user(None).name, "cli:unknown");
        assert_eq!(Actor::cli_user(Some("a\nb c")).name, "cli:abc");
        assert_eq!(Actor::cli_user(Some(&"x".repeat(500))).name.len(), 4 + 64);
        assert_eq!(Actor::worker().name, "system:worker");
    }
}
