//! Startup and authentication: the startup packet, then SCRAM-SHA-256(-PLUS), MD5 or cleartext
//! as the server asks and `require_auth` and `channel_binding` allow, up to the first
//! ReadyForQuery.

use bytes::Bytes;

use super::Connection;
use super::reader::Owes;
use crate::auth::scram::{Binding, SCRAM_SHA_256_PLUS, ScramSha256};
use crate::auth::{AuthMethod, RequireAuth, md5::md5_password};
use crate::config::{ChannelBinding, Config};
use crate::error::{ConfigError, Error, Result};
use crate::protocol::backend::{self, BackendMessage, MAX_AUTH_MESSAGE_LEN};
use crate::protocol::frontend;

/// What [`Connection::pin_text_settings`] runs when the server's settings differ.
const PIN_TEXT_SETTINGS: &str = "SET DateStyle = ISO; SET IntervalStyle = postgres; \
SET extra_float_digits = 3";

impl Connection {
    pub(super) async fn startup(&mut self, config: &Config) -> Result<()> {
        let user = config
            .get_user()
            .ok_or_else(|| Error::Config(ConfigError::new("no user name given")))?;
        let mut params: Vec<(&str, &str)> = vec![("user", user)];
        if let Some(db) = config.get_dbname() {
            params.push(("database", db));
        }
        if let Some(app) = config.get_application_name() {
            params.push(("application_name", app));
        }
        if let Some(opts) = config.get_options() {
            params.push(("options", opts));
        }
        // Only parameters every pooler accepts by default go in the startup packet: PgBouncer
        // refuses any other ("unsupported startup parameter"). The text formats we decode are
        // pinned after startup instead, see `pin_text_settings`.
        params.push(("client_encoding", "UTF8"));
        self.clear_write_buf();
        frontend::startup_message(params, &mut self.write_buf)?;
        self.send(Owes::Nothing).await?;
        let require = match config.get_require_auth() {
            Some(r) => RequireAuth::parse(r)?,
            None => RequireAuth::default(),
        };
        self.authenticate(
            user,
            config.get_password(),
            require,
            config.get_channel_binding(),
        )
        .await?;
        // After AuthenticationOk: BackendKeyData, ParameterStatus (handled in recv), then
        // ReadyForQuery, or an ErrorResponse.
        loop {
            let frame = self.recv_startup().await?;
            match backend::decode(&frame)? {
                BackendMessage::BackendKeyData {
                    process_id,
                    secret_key,
                } => {
                    self.process_id = process_id;
                    self.secret_key = secret_key.into();
                }
                BackendMessage::ReadyForQuery { status } => {
                    self.set_tx_status(status);
                    break;
                }
                BackendMessage::ErrorResponse(f) => return Err(self.db_error(&f)),
                BackendMessage::NegotiateProtocolVersion { .. } => {}
                other => {
                    return Err(Error::protocol(format!(
                        "unexpected {other:?} during startup"
                    )));
                }
            }
        }
        self.pin_text_settings().await.map(drop)
    }

    /// Makes the server print text values the way [`simple_query`](Self::simple_query) decodes
    /// them (`DateStyle=ISO`, `IntervalStyle=postgres`, exact floats), sending a `SET` only when
    /// the server's reported settings differ. Returns whether it had to.
    ///
    /// The server reports `DateStyle` and `IntervalStyle` at startup and whenever they change,
    /// and PostgreSQL's defaults already match, so normally this costs nothing: no extra round
    /// trip and nothing a pooler could refuse. A role or database default that changes them
    /// (or a `RESET ALL` that brings such a default back) costs one round trip. Floats: from
    /// PostgreSQL 12 the default `extra_float_digits=1` already prints them exactly; older
    /// servers always get the `SET`. A role default of `extra_float_digits <= 0` alone is not
    /// reported by the server and is not corrected (it affects only simple-query floats; the
    /// extended protocol reads binary values).
    ///
    /// Behind a transaction pooler a `SET` reaches one server connection only; PostgreSQL's
    /// defaults match, so configure the server rather than rely on this.
    pub async fn pin_text_settings(&mut self) -> Result<bool> {
        if !self.text_settings_differ() {
            return Ok(false);
        }
        self.batch_execute(PIN_TEXT_SETTINGS).await?;
        Ok(true)
    }

    fn text_settings_differ(&self) -> bool {
        // Only what the server reported counts: every PostgreSQL reports all three, and
        // guessing about one that reports nothing would only add a round trip.
        // The second part of DateStyle (DMY, MDY, YMD) affects only input: output stays ISO.
        let date = self
            .parameter("DateStyle")
            .is_some_and(|v| !v.trim_start().starts_with("ISO"));
        let interval = self
            .parameter("IntervalStyle")
            .is_some_and(|v| v != "postgres");
        let old_floats = self
            .parameter("server_version")
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|major| major < 12);
        date || interval || old_floats
    }

    async fn authenticate(
        &mut self,
        user: &str,
        password: Option<&[u8]>,
        require: RequireAuth,
        binding: ChannelBinding,
    ) -> Result<()> {
        let must_bind = binding == ChannelBinding::Require;
        if must_bind && !self.stream.is_tls() {
            return Err(Error::auth("channel binding required, but SSL not in use"));
        }
        let not_bindable = || {
            Error::auth(
                "channel binding required but not supported by server's authentication request",
            )
        };
        let need_password = |method: &str| {
            Error::auth(format!(
                "the server requested {method} password authentication, but no password was given"
            ))
        };
        // Checked before anything is sent: a password never goes out in a way require_auth
        // does not allow (a server downgrading SCRAM to cleartext, say).
        let check = |method: AuthMethod| {
            if require.allows(method) {
                Ok(())
            } else {
                Err(Error::auth(format!(
                    "the server requested \"{}\" authentication, which require_auth does not allow",
                    method.as_str()
                )))
            }
        };
        let mut scram: Option<ScramSha256> = None;
        let mut requested = false;
        loop {
            let frame = self.recv_startup().await?;
            let msg = backend::decode(&frame)?;
            self.clear_write_buf();
            if !matches!(
                msg,
                BackendMessage::AuthenticationOk
                    | BackendMessage::ErrorResponse(_)
                    | BackendMessage::NegotiateProtocolVersion { .. }
            ) {
                requested = true;
            }
            match msg {
                BackendMessage::AuthenticationOk => {
                    if !requested {
                        check(AuthMethod::None)?;
                    }
                    if must_bind && !scram.as_ref().is_some_and(ScramSha256::is_bound) {
                        return Err(Error::auth(
                            "channel binding required, but server authenticated client without \
                             channel binding",
                        ));
                    }
                    // A server that skips SASLFinal never proved it knows the password: it
                    // could be anyone who intercepted the connection.
                    if let Some(s) = &scram {
                        if !s.is_verified() {
                            return Err(Error::auth(
                                "the server sent AuthenticationOk before proving it knows the \
                                 password (no valid SCRAM server signature)",
                            ));
                        }
                    }
                    return Ok(());
                }
                BackendMessage::AuthenticationCleartextPassword => {
                    check(AuthMethod::Password)?;
                    if must_bind {
                        return Err(not_bindable());
                    }
                    let pw = password.ok_or_else(|| need_password("cleartext"))?;
                    frontend::password_message(pw, &mut self.write_buf)?;
                }
                BackendMessage::AuthenticationMD5Password { salt } => {
                    check(AuthMethod::Md5)?;
                    if must_bind {
                        return Err(not_bindable());
                    }
                    let pw = password.ok_or_else(|| need_password("MD5"))?;
                    let hashed = md5_password(user.as_bytes(), pw, salt);
                    frontend::password_message(hashed.as_bytes(), &mut self.write_buf)?;
                }
                BackendMessage::AuthenticationSASL { mechanisms } => {
                    if scram.is_some() {
                        return Err(Error::protocol("a second SASL exchange during startup"));
                    }
                    check(AuthMethod::ScramSha256)?;
                    let plus_offered = mechanisms.contains(&SCRAM_SHA_256_PLUS);
                    let chosen = choose_binding(
                        binding,
                        self.stream.is_tls(),
                        plus_offered,
                        self.stream.tls_server_end_point(),
                    );
                    let chosen = match chosen {
                        Some(b) if !must_bind || b.mechanism() == SCRAM_SHA_256_PLUS => b,
                        _ if must_bind => {
                            return Err(Error::auth(
                                "channel binding is required, but server did not offer an \
                                 authentication method that supports channel binding",
                            ));
                        }
                        _ => Binding::Unsupported,
                    };
                    if !mechanisms.contains(&chosen.mechanism()) {
                        return Err(Error::auth(format!(
                            "the server offers only SASL mechanisms {mechanisms:?}; supported: \
                             SCRAM-SHA-256, and SCRAM-SHA-256-PLUS over TLS"
                        )));
                    }
                    let pw = password.ok_or_else(|| need_password("SCRAM-SHA-256"))?;
                    let mechanism = chosen.mechanism();
                    let s = ScramSha256::new(pw, chosen)?;
                    frontend::sasl_initial_response(
                        mechanism,
                        s.client_first(),
                        &mut self.write_buf,
                    )?;
                    scram = Some(s);
                }
                BackendMessage::AuthenticationSASLContinue { data } => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| Error::protocol("SASLContinue without a SASL exchange"))?;
                    let client_final = s.update(data)?;
                    frontend::sasl_response(&client_final, &mut self.write_buf)?;
                }
                BackendMessage::AuthenticationSASLFinal { data } => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| Error::protocol("SASLFinal without a SASL exchange"))?;
                    s.finish(data)?;
                    continue;
                }
                BackendMessage::AuthenticationKerberosV5 => {
                    return Err(Error::auth("Kerberos V5 authentication is not supported"));
                }
                BackendMessage::AuthenticationSCMCredential => {
                    return Err(Error::auth(
                        "SCM credential authentication is not supported",
                    ));
                }
                BackendMessage::AuthenticationGSS | BackendMessage::AuthenticationGSSContinue => {
                    check(AuthMethod::Gss)?;
                    if must_bind {
                        return Err(not_bindable());
                    }
                    return Err(Error::auth("GSSAPI authentication is not supported"));
                }
                BackendMessage::AuthenticationSSPI => {
                    check(AuthMethod::Sspi)?;
                    if must_bind {
                        return Err(not_bindable());
                    }
                    return Err(Error::auth("SSPI authentication is not supported"));
                }
                BackendMessage::ErrorResponse(f) => return Err(self.db_error(&f)),
                BackendMessage::NegotiateProtocolVersion { .. } => continue,
                other => {
                    return Err(Error::protocol(format!(
                        "unexpected {other:?} during authentication"
                    )));
                }
            }
            self.send(Owes::Nothing).await?;
        }
    }

    /// During startup, frames are capped much lower: no legitimate startup message is large.
    async fn recv_startup(&mut self) -> Result<Bytes> {
        let cap = self.max_message_len;
        self.max_message_len = cap.min(MAX_AUTH_MESSAGE_LEN.max(backend::MAX_SHORT_MESSAGE_LEN));
        let r = self.recv().await;
        self.max_message_len = cap;
        r
    }
}

/// libpq's choice of GS2 header: bind when allowed, on TLS, offered and computable; say `y`
/// (could bind, not offered) on TLS when the server lists no -PLUS mechanism, so a server that
/// does support it detects a stripped list; `n` otherwise. `None`: binding is impossible
/// although the server offered it (no computable certificate hash).
fn choose_binding(
    binding: ChannelBinding,
    tls: bool,
    plus_offered: bool,
    end_point: Option<Vec<u8>>,
) -> Option<Binding> {
    if binding == ChannelBinding::Disable || !tls {
        return Some(Binding::Unsupported);
    }
    match (plus_offered, end_point) {
        (true, Some(data)) => Some(Binding::TlsServerEndPoint(data)),
        (true, None) => None,
        (false, _) => Some(Binding::NotOffered),
    }
}
