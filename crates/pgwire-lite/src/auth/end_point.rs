//! `tls-server-end-point` channel-binding data (RFC 5929 section 4.1): the hash of the server's
//! certificate, with the hash function of the certificate's signature algorithm, except that
//! MD5 and SHA-1 are replaced by SHA-256.
//!
//! Only the signature algorithm's OID is read from the certificate (a short DER walk, no
//! crypto); the hashing is the `sha2` crate's. PostgreSQL computes the same on its side
//! (`be_tls_get_certificate_hash`), so an algorithm it cannot map (Ed25519, RSA-PSS) gives no
//! binding on either side: `None` here.

use sha2::{Digest, Sha256, Sha384, Sha512};

/// `1.2.840.113549.1.1` (PKCS #1) and `1.2.840.10045.4` (ECDSA signatures), DER-encoded.
const PKCS1: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01];
const ECDSA_SIG: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04];

/// The hash a signature algorithm selects for channel binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// The channel-binding data for the DER certificate `cert`, or `None` when its signature
/// algorithm has no RFC 5929 hash (or the DER is not a certificate).
pub(crate) fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    let hash = signature_hash(signature_oid(cert)?)?;
    Some(match hash {
        Hash::Sha256 => Sha256::digest(cert).to_vec(),
        Hash::Sha384 => Sha384::digest(cert).to_vec(),
        Hash::Sha512 => Sha512::digest(cert).to_vec(),
    })
}

fn signature_hash(oid: &[u8]) -> Option<Hash> {
    if let Some(rest) = oid.strip_prefix(PKCS1) {
        return match rest {
            // md5WithRSA, sha1WithRSA: SHA-256 by the RFC's rule; sha224 is hashed as itself
            // by PostgreSQL (OpenSSL's digest for the NID), which we do not offer: no binding.
            [4] | [5] | [11] => Some(Hash::Sha256),
            [12] => Some(Hash::Sha384),
            [13] => Some(Hash::Sha512),
            _ => None,
        };
    }
    match oid.strip_prefix(ECDSA_SIG)? {
        // ecdsa-with-SHA1 (4.1), ecdsa-with-SHA256/384/512 (4.3.2/3/4).
        [1] | [3, 2] => Some(Hash::Sha256),
        [3, 3] => Some(Hash::Sha384),
        [3, 4] => Some(Hash::Sha512),
        _ => None,
    }
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, ... }`:
/// the OID inside the second element.
fn signature_oid(cert: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = element(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after_tbs) = element(body)?;
    let (tag, alg, _) = element(after_tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = element(alg)?;
    (tag == 0x06).then_some(oid)
}

/// One DER element at the start of `der`: (tag, contents, what follows). Definite lengths
/// only, as DER requires.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (body, after) = rest.split_at(len);
    Some((tag, body, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate-shaped DER: SEQUENCE { SEQUENCE {} (tbs), SEQUENCE { OID }, BIT STRING }.
    fn cert_with(oid: &[u8]) -> Vec<u8> {
        let mut alg = vec![0x06, oid.len() as u8];
        alg.extend_from_slice(oid);
        let mut inner = vec![0x30, 0x00, 0x30, alg.len() as u8];
        inner.extend_from_slice(&alg);
        inner.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut der = vec![0x30, inner.len() as u8];
        der.extend_from_slice(&inner);
        der
    }

    #[test]
    fn hash_follows_the_signature_algorithm() {
        let pkcs1 = |n: u8| [PKCS1, &[n]].concat();
        let ecdsa = |rest: &[u8]| [ECDSA_SIG, rest].concat();
        for (oid, want) in [
            (pkcs1(4), Some(32)),
            (pkcs1(5), Some(32)),
            (pkcs1(11), Some(32)),
            (pkcs1(12), Some(48)),
            (pkcs1(13), Some(64)),
            (pkcs1(10), None),
            (ecdsa(&[1]), Some(32)),
            (ecdsa(&[3, 2]), Some(32)),
            (ecdsa(&[3, 3]), Some(48)),
            (ecdsa(&[3, 4]), Some(64)),
            (vec![0x2B, 0x65, 0x70], None),
        ] {
            let cert = cert_with(&oid);
            let got = tls_server_end_point(&cert);
            assert_eq!(got.as_ref().map(Vec::len), want, "{oid:02x?}");
            if want == Some(32) {
                assert_eq!(got.unwrap(), Sha256::digest(&cert).to_vec());
            }
        }
    }

    #[test]
    fn garbage_gives_none() {
        for der in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x31, 0x00],
            &[0x30, 0x05, 0x30],
        ] {
            assert_eq!(tls_server_end_point(der), None);
        }
    }
}
