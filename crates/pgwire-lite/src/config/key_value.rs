//! The key=value form of a DSN: `host=localhost user=u password='a b'`.

use super::Config;
use super::options::is_space;
use super::params::{Origin, SUPPORTED_KEYS, UNSUPPORTED_KEYS};
use crate::error::ConfigError;

/// `key = value ...`; values may be single-quoted; `\` escapes the next character, in and out
/// of quotes.
pub(super) fn parse_key_value(s: &str) -> Result<Config, ConfigError> {
    let mut cfg = Config::new();
    let mut chars = s.chars().peekable();
    // After an unquoted password, a stray token is probably the rest of a password with a
    // space in it: name nothing from it in errors.
    let mut after_bare_password = false;
    loop {
        while chars.next_if(|c| is_space(*c)).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !is_space(*c)) {
            key.push(c);
        }
        while chars.next_if(|c| is_space(*c)).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            return Err(if after_bare_password {
                ConfigError::new(
                    "missing \"=\" after the password value in connection string \
                     (quote a password containing spaces: password='...')",
                )
            } else {
                ConfigError::new(format!(
                    "missing \"=\" after \"{key}\" in connection string"
                ))
            });
        }
        if after_bare_password
            && !SUPPORTED_KEYS.contains(&key.as_str())
            && !UNSUPPORTED_KEYS.contains(&key.as_str())
        {
            return Err(ConfigError::new(
                "invalid connection option after the password value \
                 (quote a password containing spaces: password='...')",
            ));
        }
        while chars.next_if(|c| is_space(*c)).is_some() {}
        let mut value = String::new();
        let quoted = chars.next_if_eq(&'\'').is_some();
        if quoted {
            loop {
                match chars.next() {
                    None => {
                        return Err(ConfigError::new(format!(
                            "unterminated quoted value for key \"{key}\""
                        )));
                    }
                    Some('\\') => {
                        if let Some(c) = chars.next() {
                            value.push(c);
                        }
                    }
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !is_space(*c)) {
                if c == '\\' {
                    // A trailing backslash is dropped, as in libpq.
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        cfg.set_param(&key, value.as_bytes(), Origin::KeyValue)?;
        after_bare_password = key == "password" && !quoted;
    }
    Ok(cfg)
}
