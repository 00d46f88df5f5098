//! MD5 password authentication (`AuthenticationMD5Password`).
//!
//! Kept for compatibility with roles whose verifier was stored with
//! `password_encryption = 'md5'`; PostgreSQL 18 deprecates it and we never prefer it.
//! The inner hash `md5(password || user)` is what the server stores, so it is a
//! password equivalent: it is wiped once the answer is built.

use md5::{Digest, Md5};

/// Builds the answer to `AuthenticationMD5Password`:
/// `"md5" + hex(md5(hex(md5(password + user)) + salt))`.
///
/// This is the PasswordMessage body without its terminating NUL. `user` is the role name
/// sent in the startup packet, byte for byte; `salt` is the 4 bytes the server sent.
pub fn md5_password(user: &[u8], password: &[u8], salt: [u8; 4]) -> String {
    let mut inner = Md5::new();
    inner.update(password);
    inner.update(user);
    let mut inner_digest: [u8; 16] = inner.finalize().into();
    let mut inner_hex = hex(&inner_digest);

    let mut outer = Md5::new();
    outer.update(inner_hex);
    outer.update(salt);
    let outer_digest: [u8; 16] = outer.finalize().into();

    super::wipe(&mut inner_digest);
    super::wipe(&mut inner_hex);

    let mut out = String::with_capacity(3 + 32);
    out.push_str("md5");
    for b in hex(&outer_digest) {
        out.push(char::from(b));
    }
    out
}

/// Lower-case hex of a 16-byte digest, as ASCII bytes.
fn hex(digest: &[u8; 16]) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same steps as the function, written out with the `md-5` crate and `format!`.
    fn reference(user: &[u8], password: &[u8], salt: [u8; 4]) -> String {
        let inner = Md5::digest([password, user].concat());
        let inner_hex: String = inner.iter().map(|b| format!("{b:02x}")).collect();
        let outer = Md5::digest([inner_hex.as_bytes(), &salt].concat());
        let outer_hex: String = outer.iter().map(|b| format!("{b:02x}")).collect();
        format!("md5{outer_hex}")
    }

    #[test]
    fn known_vector() {
        let got = md5_password(b"postgres", b"postgres", [0x01, 0x02, 0x03, 0x04]);
        assert_eq!(got, reference(b"postgres", b"postgres", [1, 2, 3, 4]));
        // Derived with:
        // python3 -c "import hashlib; u=b'postgres'; p=b'postgres'; s=bytes([1,2,3,4]);
        //   i=hashlib.md5(p+u).hexdigest().encode(); print('md5'+hashlib.md5(i+s).hexdigest())"
        assert_eq!(got, "md568be9ed08db75f318087ab337aaea044");
    }

    #[test]
    fn shape_and_dependence_on_every_input() {
        let base = md5_password(b"alice", b"secret", [9, 8, 7, 6]);
        assert_eq!(base.len(), 35);
        assert!(base.starts_with("md5"));
        assert!(
            base[3..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(base, md5_password(b"alicf", b"secret", [9, 8, 7, 6]));
        assert_ne!(base, md5_password(b"alice", b"secreu", [9, 8, 7, 6]));
        assert_ne!(base, md5_password(b"alice", b"secret", [9, 8, 7, 7]));
        assert_eq!(base, reference(b"alice", b"secret", [9, 8, 7, 6]));
    }

    #[test]
    fn non_utf8_and_empty_inputs() {
        let got = md5_password(b"", &[0xff, 0x00, 0xfe], [0, 0, 0, 0]);
        assert_eq!(got, reference(b"", &[0xff, 0x00, 0xfe], [0, 0, 0, 0]));
    }
}
