//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677, channel binding
//! `tls-server-end-point` of RFC 5929) as PostgreSQL speaks them.
//!
//! The exchange, driven by the connection code:
//!
//! | server sends                              | we call                | we send                        |
//! |-------------------------------------------|------------------------|--------------------------------|
//! | AuthenticationSASL (lists `SCRAM-SHA-256`)| [`ScramSha256::new`]   | SASLInitialResponse with [`client_first`](ScramSha256::client_first) |
//! | AuthenticationSASLContinue                | [`update`](ScramSha256::update) | SASLResponse with its result |
//! | AuthenticationSASLFinal                   | [`finish`](ScramSha256::finish) | nothing                      |
//! | AuthenticationOk                          | [`is_verified`](ScramSha256::is_verified) must be true | |
//!
//! The server picks the salt and the iteration count, so everything it sends is checked before
//! any work is done, and the iteration count is capped ([`MAX_ITERATIONS`]).
//!
//! PostgreSQL takes the user name from the startup packet and ignores the SCRAM one, so we send
//! `n=` empty, as libpq does. The GS2 header says what we do about channel binding ([`Binding`]):
//! `n,,` without TLS, `y,,` over TLS when the server offers no `-PLUS` mechanism (so a man in
//! the middle who strips it is detected by a server that does support it), and
//! `p=tls-server-end-point,,` with the server certificate's hash bound into the proof.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::wipe;
use crate::error::Error;

type HmacSha256 = Hmac<Sha256>;

/// The SASL mechanism name, as listed in AuthenticationSASL and sent in SASLInitialResponse.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// The channel-binding variant's mechanism name.
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// What the client does about channel binding, which decides the GS2 header.
#[derive(Clone, PartialEq, Eq)]
pub enum Binding {
    /// `n,,`: the client cannot bind (no TLS).
    Unsupported,
    /// `y,,`: the client could bind but the server offered no `-PLUS` mechanism.
    NotOffered,
    /// `p=tls-server-end-point,,`: bound to this `tls-server-end-point` data (the hash of the
    /// server's certificate).
    TlsServerEndPoint(Vec<u8>),
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Binding::Unsupported => "Unsupported",
            Binding::NotOffered => "NotOffered",
            Binding::TlsServerEndPoint(_) => "TlsServerEndPoint",
        })
    }
}

impl Binding {
    fn gs2_header(&self) -> &'static str {
        match self {
            Binding::Unsupported => "n,,",
            Binding::NotOffered => "y,,",
            Binding::TlsServerEndPoint(_) => "p=tls-server-end-point,,",
        }
    }

    /// The `c=` value: base64 of the GS2 header followed by the binding data.
    fn c_attribute(&self) -> String {
        let mut raw = self.gs2_header().as_bytes().to_vec();
        if let Binding::TlsServerEndPoint(data) = self {
            raw.extend_from_slice(data);
        }
        BASE64.encode(raw)
    }

    /// The SASL mechanism this binding goes with.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Binding::TlsServerEndPoint(_) => SCRAM_SHA_256_PLUS,
            _ => SCRAM_SHA_256,
        }
    }
}

/// The largest PBKDF2 iteration count we agree to compute.
///
/// A hostile or misconfigured server picks the count, and each iteration costs two SHA-256
/// compressions on the caller's thread. PostgreSQL's default (`scram_iterations`, PG16+) is
/// 4096; this cap is 244 times that and far above what anyone configures. Measured on the
/// development machine, release build: 4096 iterations take 0.4 ms, 1,000,000 take 100 ms
/// (a debug build is about 50 times slower). pgx caps at 10,000,000 (commit 44f61732), a
/// second of CPU per connection attempt; we prefer to refuse such a server with an error
/// naming the count.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// Length of the random client nonce before base64: 18 bytes give 24 characters, no padding.
const NONCE_LEN: usize = 18;

/// The longest part of a server `e=` reason we copy into an error.
const MAX_REASON_LEN: usize = 128;

/// The client side of one SCRAM-SHA-256 exchange.
///
/// Holds the (normalized) password until [`update`](Self::update), then only the ServerKey
/// needed to check the server's signature. Both are overwritten when no longer needed and
/// on drop; `Debug` shows only where the exchange is.
pub struct ScramSha256 {
    /// `n,,n=,r=<nonce>`: the GS2 header followed by client-first-message-bare.
    client_first: Vec<u8>,
    /// Length of the GS2 header at the start of `client_first`.
    gs2_len: usize,
    /// The client-final `c=` value.
    c_attribute: String,
    /// Our nonce, printable ASCII without `,` when we generated it.
    nonce: String,
    state: State,
}

enum State {
    /// client-first built; waiting for server-first-message.
    Initial { password: Vec<u8> },
    /// client-final sent; waiting for server-final-message.
    Continue {
        server_key: [u8; 32],
        auth_message: Vec<u8>,
    },
    /// The server proved it knows the password.
    Verified,
    /// A step failed or came out of order; nothing more can succeed.
    Failed,
}

impl Drop for State {
    fn drop(&mut self) {
        match self {
            State::Initial { password } => wipe(password),
            State::Continue { server_key, .. } => wipe(server_key),
            State::Verified | State::Failed => {}
        }
    }
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Initial { .. } => "awaiting server-first-message",
            State::Continue { .. } => "awaiting server-final-message",
            State::Verified => "verified",
            State::Failed => "failed",
        }
    }
}

impl fmt::Debug for ScramSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSha256")
            .field("state", &self.state.name())
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ScramSha256 {
    /// Starts an exchange with a random 18-byte nonce (base64, 24 characters).
    ///
    /// The password is SASLprep'd when it is UTF-8 and SASLprep accepts it, and used as raw
    /// bytes otherwise: that is what PostgreSQL does when it stores the verifier.
    /// Fails only when the operating system cannot provide random bytes.
    ///
    /// `binding` decides the GS2 header; SASLInitialResponse names [`Binding::mechanism`].
    pub fn new(password: &[u8], binding: Binding) -> Result<ScramSha256, Error> {
        let mut raw = [0u8; NONCE_LEN];
        getrandom::fill(&mut raw).map_err(|e| {
            Error::auth(format!("cannot get random bytes for the SCRAM nonce: {e}"))
        })?;
        let nonce = BASE64.encode(raw);
        Ok(Self::build("", password, &nonce, &binding))
    }

    /// Starts an exchange with a fixed nonce, for tests replaying recorded transcripts.
    ///
    /// Never use this against a real server: a predictable nonce allows replay. The nonce is
    /// used as given; one that is empty or contains `,` or non-printable characters makes the
    /// server refuse the exchange, or [`update`](Self::update) fail.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn with_nonce(password: &[u8], nonce: &str) -> ScramSha256 {
        Self::build("", password, nonce, &Binding::Unsupported)
    }

    /// [`with_nonce`](Self::with_nonce) with a channel-binding choice.
    #[cfg(test)]
    fn with_binding_and_nonce(password: &[u8], nonce: &str, binding: &Binding) -> ScramSha256 {
        Self::build("", password, nonce, binding)
    }

    /// Like [`with_nonce`](Self::with_nonce) with a user name in client-first, as in the RFC
    /// examples (PostgreSQL ignores it, so the connection never sets one).
    #[cfg(test)]
    fn with_user_and_nonce(user: &str, password: &[u8], nonce: &str) -> ScramSha256 {
        Self::build(user, password, nonce, &Binding::Unsupported)
    }

    fn build(user: &str, password: &[u8], nonce: &str, binding: &Binding) -> ScramSha256 {
        // RFC 5802 saslname: `=` and `,` are escaped.
        let user = user.replace('=', "=3D").replace(',', "=2C");
        let gs2 = binding.gs2_header();
        let client_first = format!("{gs2}n={user},r={nonce}").into_bytes();
        ScramSha256 {
            client_first,
            gs2_len: gs2.len(),
            c_attribute: binding.c_attribute(),
            nonce: nonce.to_owned(),
            state: State::Initial {
                password: normalize(password),
            },
        }
    }

    /// Whether this exchange binds the TLS channel (SCRAM-SHA-256-PLUS) and the server proved
    /// it knows the password with that binding.
    pub fn is_bound(&self) -> bool {
        self.is_verified() && self.client_first.starts_with(b"p=")
    }

    /// The client-first-message, the data of SASLInitialResponse: `n,,n=,r=<nonce>`.
    pub fn client_first(&self) -> &[u8] {
        &self.client_first
    }

    /// Takes the server-first-message (the body of AuthenticationSASLContinue) and returns the
    /// client-final-message to send in SASLResponse.
    ///
    /// The message is checked before any work: our nonce extended by the server, a non-empty
    /// base64 salt, an iteration count in `1..=MAX_ITERATIONS`, no mandatory extension.
    /// Any failure, or a call out of order, is [`Error::Auth`] and ends the exchange.
    pub fn update(&mut self, server_first: &[u8]) -> Result<Vec<u8>, Error> {
        // Whatever happens below, the exchange only moves on if we reach the end.
        let old = std::mem::replace(&mut self.state, State::Failed);
        let State::Initial { password } = &old else {
            return Err(Error::auth(format!(
                "SCRAM server-first-message arrived out of order (exchange {})",
                old.name()
            )));
        };
        let parsed = ServerFirst::parse(server_first, &self.nonce)?;

        let mut salted_password = hi(password, &parsed.salt, parsed.iterations)?;
        drop(old); // wipes the password: not needed any more

        let mut client_key = hmac(&salted_password, b"Client Key")?;
        let mut stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted_password, b"Server Key")?;
        wipe(&mut salted_password);

        let without_proof = format!("c={},r={}", self.c_attribute, parsed.nonce);
        let bare = self.client_first.get(self.gs2_len..).unwrap_or_default();
        let mut auth_message =
            Vec::with_capacity(bare.len() + server_first.len() + without_proof.len() + 2);
        auth_message.extend_from_slice(bare);
        auth_message.push(b',');
        auth_message.extend_from_slice(server_first);
        auth_message.push(b',');
        auth_message.extend_from_slice(without_proof.as_bytes());

        let client_signature = hmac(&stored_key, &auth_message)?;
        wipe(&mut stored_key);
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(client_signature) {
            *p ^= s;
        }
        wipe(&mut client_key);

        let mut client_final = without_proof.into_bytes();
        client_final.extend_from_slice(b",p=");
        client_final.extend_from_slice(BASE64.encode(proof).as_bytes());
        wipe(&mut proof);

        self.state = State::Continue {
            server_key,
            auth_message,
        };
        Ok(client_final)
    }

    /// Takes the server-final-message (the body of AuthenticationSASLFinal) and checks the
    /// server signature in constant time.
    ///
    /// A wrong or missing signature, an `e=` error from the server, or a call before
    /// [`update`](Self::update) is [`Error::Auth`].
    pub fn finish(&mut self, server_final: &[u8]) -> Result<(), Error> {
        let old = std::mem::replace(&mut self.state, State::Failed);
        let State::Continue {
            server_key,
            auth_message,
        } = &old
        else {
            return Err(Error::auth(format!(
                "SCRAM server-final-message arrived out of order (exchange {})",
                old.name()
            )));
        };

        let msg = std::str::from_utf8(server_final)
            .map_err(|_| Error::auth("SCRAM server-final-message is not valid UTF-8"))?;
        // server-final-message = (server-error / verifier) ["," extensions]
        let first = msg.split(',').next().unwrap_or_default();
        if let Some(reason) = first.strip_prefix("e=") {
            return Err(Error::auth(format!(
                "the server rejected the SCRAM exchange: {}",
                printable_prefix(reason)
            )));
        }
        let signature = first
            .strip_prefix("v=")
            .ok_or_else(|| Error::auth("SCRAM server-final-message has no `v=` signature"))?;
        let signature = BASE64.decode(signature).map_err(|_| {
            Error::auth("SCRAM server-final-message: the `v=` signature is not valid base64")
        })?;

        let mut mac = keyed(server_key)?;
        mac.update(auth_message);
        mac.verify_slice(&signature).map_err(|_| {
            Error::auth("SCRAM server signature does not match: the server did not prove it knows the password")
        })?;

        self.state = State::Verified;
        Ok(())
    }

    /// True once [`finish`](Self::finish) has verified the server's signature; the
    /// connection must refuse AuthenticationOk before that.
    pub fn is_verified(&self) -> bool {
        matches!(self.state, State::Verified)
    }
}

/// The checked parts of a server-first-message.
struct ServerFirst<'a> {
    /// Client nonce + server nonce.
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

impl<'a> ServerFirst<'a> {
    /// server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
    fn parse(msg: &'a [u8], client_nonce: &str) -> Result<ServerFirst<'a>, Error> {
        let msg = std::str::from_utf8(msg)
            .map_err(|_| Error::auth("SCRAM server-first-message is not valid UTF-8"))?;
        let mut parts = msg.split(',');

        let first = parts.next().unwrap_or_default();
        if first.starts_with("m=") {
            return Err(Error::auth(
                "SCRAM server-first-message requires an extension (`m=`) we do not support",
            ));
        }
        let nonce = attribute(Some(first), "r=", "nonce")?;
        if !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(Error::auth(
                "SCRAM server-first-message: the nonce contains non-printable characters",
            ));
        }
        if !nonce.starts_with(client_nonce) || nonce.len() <= client_nonce.len() {
            return Err(Error::auth(
                "SCRAM server-first-message: the server nonce does not extend the client nonce",
            ));
        }

        let salt = attribute(parts.next(), "s=", "salt")?;
        let salt = BASE64
            .decode(salt)
            .map_err(|_| Error::auth("SCRAM server-first-message: the salt is not valid base64"))?;
        if salt.is_empty() {
            return Err(Error::auth("SCRAM server-first-message: the salt is empty"));
        }

        let iterations = parse_iterations(attribute(parts.next(), "i=", "iteration count")?)?;

        // Optional extensions: ignored, but they must look like `x=...`, and none may be mandatory.
        for ext in parts {
            let mut chars = ext.chars();
            let well_formed =
                chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.next() == Some('=');
            if !well_formed || ext.starts_with("m=") {
                return Err(Error::auth(
                    "SCRAM server-first-message: malformed data after the iteration count",
                ));
            }
        }

        Ok(ServerFirst {
            nonce,
            salt,
            iterations,
        })
    }
}

/// The value of `part`, which must start with `prefix` and not be empty.
fn attribute<'a>(part: Option<&'a str>, prefix: &str, what: &str) -> Result<&'a str, Error> {
    match part.and_then(|p| p.strip_prefix(prefix)) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(Error::auth(format!(
            "SCRAM server-first-message: expected the {what} (`{prefix}`)"
        ))),
    }
}

/// A positive decimal no larger than [`MAX_ITERATIONS`]. Checked before any hashing, so a
/// hostile count costs nothing.
fn parse_iterations(s: &str) -> Result<u32, Error> {
    // `u64::from_str` would accept a leading `+`; the grammar is digits only.
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::auth(
            "SCRAM server-first-message: the iteration count is not a decimal number",
        ));
    }
    match s.parse::<u64>() {
        Ok(0) => Err(Error::auth(
            "SCRAM server-first-message: the iteration count is zero",
        )),
        Ok(n) => match u32::try_from(n) {
            Ok(n) if n <= MAX_ITERATIONS => Ok(n),
            _ => Err(too_many_iterations(&n.to_string())),
        },
        // All digits, so only overflow is left.
        Err(_) => Err(too_many_iterations("more than 2^64")),
    }
}

fn too_many_iterations(count: &str) -> Error {
    Error::auth(format!(
        "the server asked for {count} SCRAM iterations, more than the limit of {MAX_ITERATIONS}; refusing to compute them"
    ))
}

/// SASLprep when the password is UTF-8 and SASLprep accepts it, raw bytes otherwise
/// (PostgreSQL's `pg_saslprep` rule, also libpq's and tokio-postgres's).
fn normalize(password: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(password) {
        Ok(s) => match stringprep::saslprep(s) {
            Ok(prepped) => prepped.into_owned().into_bytes(),
            Err(_) => password.to_vec(),
        },
        Err(_) => password.to_vec(),
    }
}

/// Hi(password, salt, i) of RFC 5802: PBKDF2-HMAC-SHA-256 with one output block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Result<[u8; 32], Error> {
    #[cfg(test)]
    tests::HI_CALLS.with(|c| c.set(c.get() + 1));
    // Keying HMAC hashes/pads the password once; cloning the keyed state per round saves that.
    let prf = keyed(password)?;
    let mut mac = prf.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut result = u;
    for _ in 1..iterations {
        let mut mac = prf.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        for (r, x) in result.iter_mut().zip(u) {
            *r ^= x;
        }
    }
    wipe(&mut u);
    Ok(result)
}

fn keyed(key: &[u8]) -> Result<HmacSha256, Error> {
    // HMAC accepts keys of any length; the error branch cannot happen but must not panic.
    HmacSha256::new_from_slice(key).map_err(|_| Error::auth("HMAC-SHA-256 refused its key"))
}

fn hmac(key: &[u8], data: &[u8]) -> Result<[u8; 32], Error> {
    let mut mac = keyed(key)?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

/// A bounded, printable-ASCII prefix of server text, safe to put in an error message.
fn printable_prefix(s: &str) -> String {
    let cut: String = s
        .chars()
        .take_while(|c| c.is_ascii_graphic() || *c == ' ')
        .take(MAX_REASON_LEN)
        .collect();
    if cut.is_empty() {
        "(no reason given)".to_owned()
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    thread_local! {
        /// How many times this test thread ran `hi()`: proves a refused count cost nothing.
        pub(super) static HI_CALLS: Cell<u64> = const { Cell::new(0) };
    }

    // RFC 7677 section 3.
    const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    /// A cheap server-first (1 iteration) for tests that only care about what comes after.
    const CHEAP_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqOserver,s=c2FsdA==,i=1";

    fn auth_err(r: Result<impl fmt::Debug, Error>) -> String {
        match r {
            Err(Error::Auth(msg)) => msg,
            other => panic!("expected Error::Auth, got {other:?}"),
        }
    }

    /// The proof (`p=` value) a password produces against a fixed server-first.
    fn proof_for(password: &[u8]) -> String {
        let mut scram = ScramSha256::with_nonce(password, RFC_NONCE);
        let client_final = scram.update(CHEAP_SERVER_FIRST.as_bytes()).unwrap();
        let client_final = String::from_utf8(client_final).unwrap();
        client_final.rsplit_once(",p=").unwrap().1.to_owned()
    }

    #[test]
    fn channel_binding_headers_and_c_attribute() {
        let data = vec![0xAB; 32];
        for (binding, header) in [
            (Binding::Unsupported, "n,,"),
            (Binding::NotOffered, "y,,"),
            (
                Binding::TlsServerEndPoint(data.clone()),
                "p=tls-server-end-point,,",
            ),
        ] {
            let mut scram = ScramSha256::with_binding_and_nonce(b"pencil", RFC_NONCE, &binding);
            let first = String::from_utf8(scram.client_first().to_vec()).unwrap();
            assert_eq!(first, format!("{header}n=,r={RFC_NONCE}"));
            let fin =
                String::from_utf8(scram.update(CHEAP_SERVER_FIRST.as_bytes()).unwrap()).unwrap();
            let mut raw = header.as_bytes().to_vec();
            if let Binding::TlsServerEndPoint(d) = &binding {
                raw.extend_from_slice(d);
            }
            assert!(
                fin.starts_with(&format!("c={},r=", BASE64.encode(&raw))),
                "{fin}"
            );
            assert!(
                !format!("{binding:?}").contains("171"),
                "binding data stays out of Debug"
            );
        }
        assert_eq!(Binding::NotOffered.c_attribute(), "eSws");
        assert_eq!(Binding::Unsupported.c_attribute(), "biws");
        assert_eq!(
            Binding::TlsServerEndPoint(data).mechanism(),
            SCRAM_SHA_256_PLUS
        );
    }

    #[test]
    fn rfc7677_vector() {
        let mut scram = ScramSha256::with_user_and_nonce("user", b"pencil", RFC_NONCE);
        assert_eq!(scram.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let client_final = scram.update(RFC_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(client_final).unwrap(), RFC_CLIENT_FINAL);
        assert!(!scram.is_verified());
        scram.finish(RFC_SERVER_FINAL.as_bytes()).unwrap();
        assert!(scram.is_verified());
        // Once verified, a second server-final is out of order.
        auth_err(scram.finish(RFC_SERVER_FINAL.as_bytes()));
        assert!(!scram.is_verified());
    }

    #[test]
    fn postgres_client_first_has_empty_user() {
        let scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
        assert_eq!(scram.client_first(), b"n,,n=,r=rOprNGfwEbeRWgbNEkqO");
    }

    #[test]
    fn random_nonce_shape() {
        let a = ScramSha256::new(b"pw", Binding::Unsupported).unwrap();
        let b = ScramSha256::new(b"pw", Binding::Unsupported).unwrap();
        let nonce = a.client_first().strip_prefix(b"n,,n=,r=").unwrap();
        assert_eq!(nonce.len(), 24);
        assert!(
            nonce
                .iter()
                .all(|b| (0x21..=0x7e).contains(b) && *b != b',')
        );
        assert_ne!(a.client_first(), b.client_first());
    }

    #[test]
    fn wrong_server_signature() {
        let mut scram = ScramSha256::with_user_and_nonce("user", b"pencil", RFC_NONCE);
        scram.update(RFC_SERVER_FIRST.as_bytes()).unwrap();
        // Right length, one bit off.
        let msg = auth_err(scram.finish(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
        assert!(msg.contains("signature"), "{msg}");
        assert!(!scram.is_verified());
        // The exchange is over: even the right signature is now refused.
        auth_err(scram.finish(RFC_SERVER_FINAL.as_bytes()));
        assert!(!scram.is_verified());
    }

    #[test]
    fn wrong_password_gives_a_signature_the_server_cannot_match() {
        let mut scram = ScramSha256::with_user_and_nonce("user", b"pencil2", RFC_NONCE);
        let client_final = scram.update(RFC_SERVER_FIRST.as_bytes()).unwrap();
        assert_ne!(String::from_utf8(client_final).unwrap(), RFC_CLIENT_FINAL);
        auth_err(scram.finish(RFC_SERVER_FINAL.as_bytes()));
    }

    #[test]
    fn server_error_is_reported() {
        let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
        scram.update(CHEAP_SERVER_FIRST.as_bytes()).unwrap();
        let msg = auth_err(scram.finish(b"e=invalid-proof"));
        assert!(msg.contains("invalid-proof"), "{msg}");
        assert!(!scram.is_verified());
    }

    #[test]
    fn server_error_reason_is_bounded_and_printable() {
        let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
        scram.update(CHEAP_SERVER_FIRST.as_bytes()).unwrap();
        let long = format!("e={}\u{7}tail", "x".repeat(1000));
        let msg = auth_err(scram.finish(long.as_bytes()));
        assert!(msg.len() < MAX_REASON_LEN + 100, "{msg}");
        assert!(!msg.contains('\u{7}'));
    }

    #[test]
    fn finish_before_update() {
        let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
        let msg = auth_err(scram.finish(RFC_SERVER_FINAL.as_bytes()));
        assert!(msg.contains("out of order"), "{msg}");
        assert!(!scram.is_verified());
    }

    #[test]
    fn update_twice() {
        let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
        scram.update(CHEAP_SERVER_FIRST.as_bytes()).unwrap();
        auth_err(scram.update(CHEAP_SERVER_FIRST.as_bytes()));
    }

    #[test]
    fn nonce_must_extend_ours() {
        for server_first in [
            // A different nonce entirely.
            "r=XXXXNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            // Ours, not extended.
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            // A prefix of ours.
            "r=rOprNGfw,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ] {
            let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
            let msg = auth_err(scram.update(server_first.as_bytes()));
            assert!(msg.contains("nonce"), "{server_first}: {msg}");
            // A failed update ends the exchange.
            auth_err(scram.finish(RFC_SERVER_FINAL.as_bytes()));
        }
    }

    #[test]
    fn iteration_count_over_cap_is_refused_without_computing() {
        for count in [u64::from(MAX_ITERATIONS) + 1, u64::from(u32::MAX), u64::MAX] {
            let server_first = format!("r={RFC_NONCE}abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={count}");
            let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
            let calls = HI_CALLS.with(Cell::get);
            let start = Instant::now();
            let msg = auth_err(scram.update(server_first.as_bytes()));
            assert_eq!(HI_CALLS.with(Cell::get), calls, "hi() ran for {count}");
            // Loose on purpose (shared machine); u32::MAX iterations would take minutes.
            assert!(start.elapsed() < Duration::from_secs(1), "{count}");
            assert!(msg.contains(&count.to_string()), "{msg}");
            assert!(msg.contains(&MAX_ITERATIONS.to_string()), "{msg}");
        }
        let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
        let huge = format!("r={RFC_NONCE}abc,s=c2FsdA==,i={}", "9".repeat(500));
        let msg = auth_err(scram.update(huge.as_bytes()));
        assert!(msg.contains("limit") && msg.len() < 200, "{msg}");
    }

    #[test]
    fn iteration_count_must_be_a_positive_decimal() {
        for i in ["0", "+4096", "-1", "4096x", "0x10", " 4096", "", "4 096"] {
            let server_first = format!("r={RFC_NONCE}abc,s=c2FsdA==,i={i}");
            let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
            auth_err(scram.update(server_first.as_bytes()));
        }
    }

    #[test]
    fn malformed_server_first() {
        let cases: &[&[u8]] = &[
            b"",
            b",,",
            b"m=ext,r=rOprNGfwEbeRWgbNEkqOabc,s=c2FsdA==,i=1",
            b"r=rOprNGfwEbeRWgbNEkqOabc,s=c2FsdA==",
            b"r=rOprNGfwEbeRWgbNEkqOabc,i=1,s=c2FsdA==",
            b"s=c2FsdA==,r=rOprNGfwEbeRWgbNEkqOabc,i=1",
            b"r=rOprNGfwEbeRWgbNEkqOabc,s=,i=1",
            b"r=rOprNGfwEbeRWgbNEkqOabc,s=!!notbase64,i=1",
            b"r=rOprNGfwEbeRWgbNEkqOabc,s=c2FsdA==,i=1,",
            b"r=rOprNGfwEbeRWgbNEkqOabc,s=c2FsdA==,i=1,m=ext",
            b"r=rOprNGfwEbeRWgbNEkqOabc,s=c2FsdA==,i=1,=x",
            b"r=rOprNGfwEbeRWgbNEkqOa c,s=c2FsdA==,i=1",
            b"r=rOprNGfwEbeRWgbNEkqO\xc3\xa9,s=c2FsdA==,i=1",
            b"r=rOprNGfwEbeRWgbNEkqOabc\xff,s=c2FsdA==,i=1",
        ];
        for case in cases {
            let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
            auth_err(scram.update(case));
        }
        let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
        let msg = auth_err(scram.update(b"m=ext,r=x"));
        assert!(msg.contains("m="), "{msg}");
    }

    #[test]
    fn optional_extensions_are_ignored() {
        let mut plain = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
        let mut extended = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
        let a = plain.update(CHEAP_SERVER_FIRST.as_bytes()).unwrap();
        let b = extended
            .update(format!("{CHEAP_SERVER_FIRST},x=future").as_bytes())
            .unwrap();
        // Same `c=` and `r=`; the proofs differ because the auth message includes the extension.
        let fields = |m: &[u8]| {
            m.split(|&c| c == b',')
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        let (a, b) = (fields(&a), fields(&b));
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[2], b[2]);
    }

    #[test]
    fn truncated_messages() {
        let full = RFC_SERVER_FIRST.as_bytes();
        let i_value = RFC_SERVER_FIRST.find(",i=").unwrap() + 3;
        for len in 0..full.len() {
            let mut scram = ScramSha256::with_user_and_nonce("user", b"pencil", RFC_NONCE);
            let r = scram.update(&full[..len]);
            // A prefix that ends inside the digits of `i=` is a valid, smaller count.
            if len <= i_value {
                auth_err(r);
            }
        }
        let final_full = RFC_SERVER_FINAL.as_bytes();
        for len in 0..final_full.len() {
            let mut scram = ScramSha256::with_user_and_nonce("user", b"pencil", RFC_NONCE);
            scram.update(full).unwrap();
            auth_err(scram.finish(&final_full[..len]));
        }
    }

    #[test]
    fn saslprep_maps_the_password() {
        // U+00AD SOFT HYPHEN is mapped to nothing, U+00A0 NO-BREAK SPACE to a space.
        assert_eq!(normalize("I\u{00AD}X".as_bytes()), b"IX");
        assert_eq!(normalize("a\u{00A0}b".as_bytes()), b"a b");
        assert_eq!(proof_for("I\u{00AD}X".as_bytes()), proof_for(b"IX"));
        assert_eq!(proof_for("a\u{00A0}b".as_bytes()), proof_for(b"a b"));
        assert_ne!(proof_for(b"IX"), proof_for(b"I X"));
    }

    #[test]
    fn saslprep_rejection_falls_back_to_raw_bytes() {
        // U+0007 is a prohibited ASCII control character; non-UTF-8 cannot be prepared at all.
        let prohibited = "pass\u{0007}word".as_bytes();
        assert!(stringprep::saslprep("pass\u{0007}word").is_err());
        assert_eq!(normalize(prohibited), prohibited);
        let not_utf8: &[u8] = &[b'p', 0xff, 0xfe, b'w'];
        assert_eq!(normalize(not_utf8), not_utf8);
        // And the exchange goes through with them.
        assert_ne!(proof_for(prohibited), proof_for(b"password"));
        assert_ne!(proof_for(not_utf8), proof_for(b"pw"));
    }

    #[test]
    fn hi_matches_pbkdf2_vectors() {
        fn hex(bytes: [u8; 32]) -> String {
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
        // Checked with python3 hashlib.pbkdf2_hmac('sha256', b'password', b'salt', c).
        assert_eq!(
            hex(hi(b"password", b"salt", 1).unwrap()),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            hex(hi(b"password", b"salt", 4096).unwrap()),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let password = "secret123-hunter2";
        let mut scram = ScramSha256::with_nonce(password.as_bytes(), RFC_NONCE);
        let before = format!("{scram:?}");
        assert!(!before.contains(password), "{before}");
        assert!(before.contains("redacted"), "{before}");
        scram.update(CHEAP_SERVER_FIRST.as_bytes()).unwrap();
        let after = format!("{scram:?}");
        assert!(!after.contains(password), "{after}");
        // Errors do not carry it either.
        let err = scram.finish(b"v=AAAA").unwrap_err();
        assert!(!format!("{err} {err:?}").contains(password));
    }

    proptest! {
        #[test]
        fn update_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
            let _ = scram.update(&bytes);
        }

        /// Starts with our nonce so the fuzzing reaches the salt and count checks.
        #[test]
        fn update_never_panics_past_the_nonce(
            server_nonce in "[!-~]{0,8}",
            salt in "[A-Za-z0-9+/=!,]{0,12}",
            count in "[0-9+-]{0,4}",
            tail in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            // The `,` keeps the tail from lengthening the count into an expensive one.
            let mut msg = format!("r={RFC_NONCE}{server_nonce},s={salt},i={count},").into_bytes();
            msg.extend_from_slice(&tail);
            let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
            let _ = scram.update(&msg);
        }

        #[test]
        fn finish_rejects_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
            scram.update(CHEAP_SERVER_FIRST.as_bytes()).unwrap();
            prop_assert!(scram.finish(&bytes).is_err());
            prop_assert!(!scram.is_verified());
        }

        #[test]
        fn finish_rejects_arbitrary_signatures(sig in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut scram = ScramSha256::with_nonce(b"pencil", RFC_NONCE);
            scram.update(CHEAP_SERVER_FIRST.as_bytes()).unwrap();
            let msg = format!("v={}", BASE64.encode(&sig));
            prop_assert!(matches!(scram.finish(msg.as_bytes()), Err(Error::Auth(_))));
        }
    }
}
