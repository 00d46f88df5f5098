//! Password authentication: SCRAM-SHA-256 (with TLS channel binding) and MD5.
//!
//! Pure functions and small state machines, no I/O: the connection code reads the
//! Authentication* messages, feeds their bodies in here and writes back what comes out.
//! Cleartext needs no help: the password goes into a PasswordMessage as it is.

pub(crate) mod end_point;
pub mod md5;
pub mod scram;

/// Best-effort overwrite of a secret before its memory is released.
///
/// `black_box` keeps the optimizer from dropping the stores as dead. Copies made earlier
/// (moves, hasher internals) are not reached; this narrows the window, it does not close it.
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(&*buf);
}

use crate::error::ConfigError;

/// An authentication method, as named by libpq's `require_auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Cleartext password (`password`).
    Password,
    /// MD5 password (`md5`).
    Md5,
    /// GSSAPI (`gss`).
    Gss,
    /// SSPI (`sspi`).
    Sspi,
    /// SCRAM-SHA-256 (`scram-sha-256`).
    ScramSha256,
    /// The server asked for no authentication at all (`none`).
    None,
}

impl AuthMethod {
    const ALL: [AuthMethod; 6] = [
        AuthMethod::Password,
        AuthMethod::Md5,
        AuthMethod::Gss,
        AuthMethod::Sspi,
        AuthMethod::ScramSha256,
        AuthMethod::None,
    ];

    /// The name libpq uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::Md5 => "md5",
            AuthMethod::Gss => "gss",
            AuthMethod::Sspi => "sspi",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::None => "none",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// libpq's `require_auth`: which authentication methods the client accepts from the server, so
/// that a password is never sent in a way the user did not allow (a server that downgrades to
/// cleartext, say).
///
/// Grammar: a comma-separated list of `password`, `md5`, `gss`, `sspi`, `scram-sha-256`, `none`;
/// either every entry is negated with `!` (everything but those) or none is (only those).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequireAuth {
    allowed: [bool; 6],
}

impl Default for RequireAuth {
    fn default() -> Self {
        RequireAuth { allowed: [true; 6] }
    }
}

impl RequireAuth {
    /// Parses libpq's grammar. Errors name the offending entry.
    pub fn parse(s: &str) -> Result<RequireAuth, ConfigError> {
        let mut negated = None;
        let mut seen = [false; 6];
        for raw in s.split(',') {
            let entry = raw.trim();
            let (neg, name) = match entry.strip_prefix('!') {
                Some(n) => (true, n),
                None => (false, entry),
            };
            if *negated.get_or_insert(neg) != neg {
                return Err(ConfigError::new(format!(
                    "require_auth: negative and positive methods cannot be mixed (\"{entry}\")"
                )));
            }
            let method = AuthMethod::ALL
                .into_iter()
                .find(|m| m.as_str() == name)
                .ok_or_else(|| {
                    ConfigError::new(format!("require_auth: unknown method \"{name}\""))
                })?;
            if std::mem::replace(&mut seen[method.index()], true) {
                return Err(ConfigError::new(format!(
                    "require_auth: method \"{name}\" is given more than once"
                )));
            }
        }
        let allowed = if negated == Some(true) {
            seen.map(|s| !s)
        } else {
            seen
        };
        Ok(RequireAuth { allowed })
    }

    /// Whether the server may use `method`.
    pub fn allows(&self, method: AuthMethod) -> bool {
        self.allowed[method.index()]
    }
}

#[cfg(test)]
mod require_auth_tests {
    use super::*;

    #[test]
    fn positive_and_negative_lists() {
        let r = RequireAuth::parse("scram-sha-256").unwrap();
        assert!(r.allows(AuthMethod::ScramSha256));
        assert!(!r.allows(AuthMethod::Password));
        assert!(!r.allows(AuthMethod::None));
        let r = RequireAuth::parse("!password, !md5").unwrap();
        assert!(!r.allows(AuthMethod::Password));
        assert!(!r.allows(AuthMethod::Md5));
        assert!(r.allows(AuthMethod::ScramSha256));
        assert!(r.allows(AuthMethod::None));
        assert!(
            !RequireAuth::parse("!none")
                .unwrap()
                .allows(AuthMethod::None)
        );
        assert!(RequireAuth::default().allows(AuthMethod::Gss));
    }

    #[test]
    fn bad_grammar_names_the_entry() {
        let e = RequireAuth::parse("md5,!password").unwrap_err();
        assert!(e.message().contains("!password"), "{e}");
        let e = RequireAuth::parse("md5,kerberos").unwrap_err();
        assert!(e.message().contains("kerberos"), "{e}");
        let e = RequireAuth::parse("md5,md5").unwrap_err();
        assert!(e.message().contains("more than once"), "{e}");
        assert!(RequireAuth::parse("").is_err());
    }
}
