//! The roles of the throwaway cluster: one per authentication method, tokio-postgres / pgx style.
//!
//! `pg_hba.conf` and the setup SQL are generated from this one table so they cannot drift apart.

/// The database every test connects to (created in the template, owned by `postgres`).
pub const DB_NAME: &str = "psqlpool_test";

/// Role authenticated with `scram-sha-256`.
pub const SCRAM_USER: &str = "scram_user";
/// Password of [`SCRAM_USER`].
pub const SCRAM_PASS: &str = "scram_pass";
/// Role authenticated with `md5` (its password is stored as an MD5 hash, so the server really uses MD5).
pub const MD5_USER: &str = "md5_user";
/// Password of [`MD5_USER`].
pub const MD5_PASS: &str = "md5_pass";
/// Role authenticated with `password` (cleartext over the wire).
pub const PASS_USER: &str = "pass_user";
/// Password of [`PASS_USER`].
pub const PASS_PASS: &str = "pass_pass";
/// Role authenticated with `trust` (no password).
pub const TRUST_USER: &str = "trust_user";
/// Role authenticated with `scram-sha-256` whose password only works after SASLprep.
pub const SASL_USER: &str = "sasl_user";
/// Raw password of [`SASL_USER`], as a user would type it: non-ASCII letters, a NO-BREAK SPACE
/// (U+00A0, SASLprep maps it to a space), a SOFT HYPHEN (U+00AD, mapped to nothing) and a FEMININE
/// ORDINAL INDICATOR (U+00AA, NFKC turns it into `a`). The server SASLpreps it at `CREATE ROLE`; a
/// client that hashes these bytes without SASLprep fails to log in.
pub const SASL_PASS: &str = "p\u{E4}\u{A0}ss\u{AD}w\u{F6}rd\u{AA}";
/// [`SASL_PASS`] after SASLprep (RFC 4013): what the SCRAM key derivation actually hashes.
pub const SASL_PASS_PREPARED: &str = "p\u{E4} ssw\u{F6}rda";
/// The superuser. `trust` on the Unix socket, `scram-sha-256` over TCP.
pub const ADMIN_USER: &str = "postgres";
/// Password of [`ADMIN_USER`] (used over TCP).
pub const ADMIN_PASS: &str = "postgres";

/// One login role of the throwaway cluster, named after the authentication method it exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// [`SCRAM_USER`]: `scram-sha-256`.
    Scram,
    /// [`MD5_USER`]: `md5`.
    Md5,
    /// [`PASS_USER`]: `password` (cleartext).
    Password,
    /// [`TRUST_USER`]: `trust`.
    Trust,
    /// [`SASL_USER`]: `scram-sha-256` with a password that needs SASLprep.
    Sasl,
    /// [`ADMIN_USER`]: the superuser, `scram-sha-256` over TCP.
    Postgres,
}

impl Role {
    /// Every role, in `pg_hba.conf` order.
    pub const ALL: [Role; 6] = [
        Role::Scram,
        Role::Md5,
        Role::Password,
        Role::Trust,
        Role::Sasl,
        Role::Postgres,
    ];

    /// The role name.
    pub fn user(self) -> &'static str {
        match self {
            Role::Scram => SCRAM_USER,
            Role::Md5 => MD5_USER,
            Role::Password => PASS_USER,
            Role::Trust => TRUST_USER,
            Role::Sasl => SASL_USER,
            Role::Postgres => ADMIN_USER,
        }
    }

    /// The password to send (raw, not SASLprepped), `None` for the trust role.
    pub fn password(self) -> Option<&'static str> {
        match self {
            Role::Scram => Some(SCRAM_PASS),
            Role::Md5 => Some(MD5_PASS),
            Role::Password => Some(PASS_PASS),
            Role::Trust => None,
            Role::Sasl => Some(SASL_PASS),
            Role::Postgres => Some(ADMIN_PASS),
        }
    }

    /// The `pg_hba.conf` method that applies to this role over TCP.
    pub fn tcp_method(self) -> &'static str {
        match self {
            Role::Scram | Role::Sasl | Role::Postgres => "scram-sha-256",
            Role::Md5 => "md5",
            Role::Password => "password",
            Role::Trust => "trust",
        }
    }

    /// The `pg_hba.conf` method that applies to this role on the Unix socket: the same as over
    /// TCP, except the superuser, who is trusted there so the harness can administer the cluster.
    pub fn local_method(self) -> &'static str {
        match self {
            Role::Postgres => "trust",
            other => other.tcp_method(),
        }
    }

    /// The `password_encryption` in force when the role's password is set: `md5` for the MD5 role,
    /// because an `md5` hba line with a SCRAM verifier silently performs SCRAM.
    pub(crate) fn password_encryption(self) -> &'static str {
        match self {
            Role::Md5 => "md5",
            _ => "scram-sha-256",
        }
    }
}

/// The `pg_hba.conf` of the throwaway cluster. First match wins, so the per-role lines come before
/// the catch-all lines for roles that tests create themselves (SCRAM).
pub(crate) fn hba_conf() -> String {
    let mut out = String::from(
        "# Written by pg_harness (psqlpool tests). First match wins.\n\
         # TYPE  DATABASE  USER  ADDRESS  METHOD\n",
    );
    for role in Role::ALL {
        out.push_str(&format!(
            "local all {} {}\n",
            role.user(),
            role.local_method()
        ));
        out.push_str(&format!(
            "host all {} 127.0.0.1/32 {}\n",
            role.user(),
            role.tcp_method()
        ));
    }
    out.push_str("local all all scram-sha-256\n");
    out.push_str("host all all 127.0.0.1/32 scram-sha-256\n");
    out
}

/// The SQL (a psql script, run as the superuser over the socket) creating the roles and the
/// test database.
pub(crate) fn setup_sql() -> String {
    let mut sql = String::from("\\set ON_ERROR_STOP on\n");
    for role in Role::ALL {
        sql.push_str(&format!(
            "SET password_encryption = '{}';\n",
            role.password_encryption()
        ));
        let verb = if role == Role::Postgres {
            "ALTER ROLE"
        } else {
            "CREATE ROLE"
        };
        let password = match role.password() {
            Some(p) => format!(" PASSWORD {}", quote_literal(p)),
            None => String::new(),
        };
        sql.push_str(&format!(
            "{verb} {} LOGIN{password};\n",
            quote_ident(role.user())
        ));
    }
    sql.push_str(&format!(
        "CREATE DATABASE {db} ENCODING 'UTF8' TEMPLATE template0;\n\
         GRANT ALL ON DATABASE {db} TO PUBLIC;\n\
         \\connect {db}\n\
         GRANT ALL ON SCHEMA public TO PUBLIC;\n",
        db = quote_ident(DB_NAME)
    ));
    sql
}

/// Quotes a string as an SQL literal (standard_conforming_strings is on by default).
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Quotes an SQL identifier.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hba_lists_every_role_before_the_catch_all() {
        let hba = hba_conf();
        let catch_all = hba.find("host all all").expect("catch-all line");
        for role in Role::ALL {
            let line = format!(
                "host all {} 127.0.0.1/32 {}",
                role.user(),
                role.tcp_method()
            );
            let at = hba.find(&line).expect("role line present");
            assert!(at < catch_all, "{line} must precede the catch-all");
        }
        assert!(hba.contains("local all postgres trust\n"));
    }

    #[test]
    fn setup_sql_sets_md5_encryption_for_the_md5_role_only() {
        let sql = setup_sql();
        let md5 = sql.find("CREATE ROLE \"md5_user\"").expect("md5 role");
        let before = &sql[..md5];
        assert!(
            before
                .trim_end()
                .ends_with("SET password_encryption = 'md5';\n".trim_end())
        );
        assert!(sql.contains("ALTER ROLE \"postgres\" LOGIN PASSWORD 'postgres';"));
        assert!(sql.contains("CREATE ROLE \"trust_user\" LOGIN;"));
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
