//! Quoting the names the pool puts into SQL itself (savepoints, LISTEN channels).

use crate::error::{Error, Result};

/// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes; a longer name would silently
/// become another one, so it is refused instead.
const MAX_IDENTIFIER_LEN: usize = 63;

/// `name` as a quoted SQL identifier (`"my ""odd"" name"`), exactly as given: case is kept.
/// Refused: an empty name, one longer than 63 bytes, one containing a NUL byte.
pub(crate) fn quote(what: &'static str, name: &str) -> Result<String> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_IDENTIFIER_LEN {
        Some("it is longer than 63 bytes, which PostgreSQL would truncate")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(Error::InvalidName {
            what,
            name: name.chars().take(80).collect(),
            why,
        });
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_refuses() {
        assert_eq!(quote("channel", "jobs").unwrap(), "\"jobs\"");
        assert_eq!(quote("channel", "a \"b\"").unwrap(), "\"a \"\"b\"\"\"");
        assert_eq!(quote("channel", "Ünï").unwrap(), "\"Ünï\"");
        for bad in ["", "a\0b", &"x".repeat(64)] {
            let e = quote("channel", bad).unwrap_err();
            assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
            assert!(e.to_string().starts_with("invalid channel name"), "{e}");
        }
        assert!(quote("savepoint", &"x".repeat(63)).is_ok());
    }
}
