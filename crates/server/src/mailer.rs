//! Email over SMTP, for alert notifications.
//!
//! A [`Mailer`] is built once from a [`MailerConfig`] and sends each [`Email`] as one plain-text
//! UTF-8 message with every recipient in `To`. It wraps lettre's async SMTP transport: the URL
//! picks plain SMTP, STARTTLS or implicit TLS, and TLS is rustls with ring and the webpki roots —
//! the stack reqwest and sqlx already use here. Each send opens its own connection: alerts are
//! rare, and a pooled connection would mostly sit idle until the server drops it.
//!
//! A failure is a [`MailError`] whose variant says what to do next: fix the configuration, retry
//! later, or give up on this message. No error text and no `Debug` output holds the SMTP password.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::Url;

/// Where and as whom to send mail.
#[derive(Clone)]
pub struct MailerConfig {
    /// The SMTP server, in lettre's URL format:
    /// - `smtp://user:pass@host:port`: plain SMTP, port 25 by default;
    /// - `smtp://…?tls=required`: STARTTLS or fail, port 587 by default
    ///   (`?tls=opportunistic`: STARTTLS when the server offers it);
    /// - `smtps://user:pass@host:port`: implicit TLS, port 465 by default.
    ///
    /// Percent-encode reserved characters in the user and password. A path sets the name sent
    /// with EHLO (`smtp://host/mail.example.com`); without one it is `[127.0.0.1]`.
    pub url: String,
    /// The `From` mailbox, e.g. `ledgerlink <alerts@example.com>`. Its domain also ends every
    /// `Message-ID`.
    pub from: String,
    /// How long one send may take, from connecting to the server's last reply.
    pub timeout: Duration,
}

impl fmt::Debug for MailerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailerConfig")
            .field("url", &redacted(&self.url))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub to: Vec<Recipient>,
    pub subject: String,
    /// The plain-text body; `\n` line endings are sent as CRLF.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The display name; may be empty.
    pub name: String,
    pub email: String,
}

/// Why a message was not sent, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The configuration cannot work: a bad URL or from address, or credentials the server
    /// refuses. Nothing will be sent until it is fixed.
    #[error("email is misconfigured: {0}")]
    Config(String),
    /// A 4xx reply, a timeout, or a network or TLS failure: the same message may go through later.
    #[error("email could not be sent for now: {0}")]
    Transient(String),
    /// A 5xx reply or a message that cannot be sent as written (e.g. a bad recipient address):
    /// retrying this message will not help.
    #[error("email was refused: {0}")]
    Permanent(String),
}

impl MailError {
    /// Whether sending the same message again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, MailError::Transient(_))
    }
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host[:port]`, to say which server failed.
    server: String,
    timeout: Duration,
    password: Password,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer").field("server", &self.server).field("from", &self.from.to_string()).finish()
    }
}

impl Mailer {
    /// Checks the configuration and prepares the transport; no connection is made until [`send`].
    ///
    /// [`send`]: Mailer::send
    pub fn new(config: &MailerConfig) -> Result<Mailer, MailError> {
        // url::ParseError never quotes the input, so it cannot leak the password.
        let url = Url::parse(&config.url)
            .map_err(|e| MailError::Config(format!("the SMTP URL is invalid: {e}")))?;
        let password = Password::of(&url);
        if !matches!(url.scheme(), "smtp" | "smtps") {
            return Err(MailError::Config(format!(
                "the SMTP URL must start with smtp:// or smtps://, not {}://",
                url.scheme()
            )));
        }
        if let Some((_, tls)) = url.query_pairs().find(|(key, _)| key == "tls")
            && !matches!(tls.as_ref(), "required" | "opportunistic")
        {
            return Err(MailError::Config(format!(
                "the SMTP URL's tls parameter must be required or opportunistic, not {tls:?}"
            )));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            MailError::Config(format!("the SMTP URL {} has no host", redacted(&config.url)))
        })?;
        let server = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        if config.timeout.is_zero() {
            return Err(MailError::Config("the SMTP timeout must be longer than zero".into()));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.url)
            .map_err(|e| {
                let detail = format!("the SMTP URL {} is not usable: {e}", redacted(&config.url));
                MailError::Config(password.scrub(&detail))
            })?
            .timeout(Some(config.timeout))
            .build();
        let from: Mailbox = config.from.parse().map_err(|e| {
            MailError::Config(format!("the from address {:?} is not a valid mailbox: {e}", config.from))
        })?;
        Ok(Mailer { transport, from, server, timeout: config.timeout, password })
    }

    /// Sends one message to all of `email.to` in a single SMTP transaction.
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let message = self.message(email)?;
        let ascii_envelope = message.envelope().to().iter().all(|a| AsRef::<str>::as_ref(a).is_ascii());
        // lettre's async transport bounds only the TCP connect; a server that accepts and then
        // stalls would hold this send forever.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_reply)) => Ok(()),
            Ok(Err(error)) => Err(self.classify(&error, ascii_envelope)),
            Err(_elapsed) => {
                Err(MailError::Transient(format!("{}: no answer within {:?}", self.server, self.timeout)))
            }
        }
    }

    fn message(&self, email: &Email) -> Result<Message, MailError> {
        if email.to.is_empty() {
            return Err(MailError::Permanent("an email needs at least one recipient".into()));
        }
        // lettre encodes non-ASCII subjects and names as RFC 2047 words, and picks
        // quoted-printable or base64 for the body, so the message itself is 7-bit clean.
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(one_line(&email.subject))
            .message_id(Some(self.new_message_id()))
            .date_now()
            .header(ContentType::TEXT_PLAIN);
        for recipient in &email.to {
            builder = builder.to(recipient.mailbox()?);
        }
        builder
            .body(email.text.clone())
            .map_err(|e| MailError::Permanent(format!("the message cannot be built: {e}")))
    }

    /// `<random@from-domain>`: unique, and in a domain we send for, which spam filters expect.
    fn new_message_id(&self) -> String {
        format!("<{:032x}@{}>", rand::random::<u128>(), self.from.email.domain())
    }

    /// Sorts a lettre error by what to do next. `ascii_envelope`: whether every recipient
    /// address is ASCII, the one per-message condition lettre reports as a client error.
    fn classify(&self, error: &lettre::transport::smtp::Error, ascii_envelope: bool) -> MailError {
        let detail = self.password.scrub(&format!("{}: {error}", self.server));
        match error.status().map(u16::from) {
            // Authentication required, mechanism too weak, credentials invalid, encryption
            // required (RFC 4954): every message would fail the same way.
            Some(530 | 534 | 535 | 538) => MailError::Config(detail),
            _ if error.is_permanent() => MailError::Permanent(detail),
            // lettre refuses before sending when the server lacks what the URL asks for (STARTTLS,
            // an AUTH mechanism in common) or what the message needs (SMTPUTF8 for non-ASCII
            // addresses; the body and headers are always 7-bit). Repeating changes nothing.
            _ if error.is_client() && ascii_envelope => MailError::Config(detail),
            _ if error.is_client() => MailError::Permanent(detail),
            // 4xx replies, timeouts, refused connections, TLS handshakes, garbled replies.
            _ => MailError::Transient(detail),
        }
    }
}

impl Recipient {
    fn mailbox(&self) -> Result<Mailbox, MailError> {
        let email: Address = self.email.trim().parse().map_err(|e| {
            MailError::Permanent(format!("{:?} is not a valid recipient address: {e}", self.email))
        })?;
        let name = one_line(&self.name);
        let name = name.trim();
        Ok(Mailbox::new((!name.is_empty()).then(|| name.to_owned()), email))
    }
}

/// Header text on one line: a line break in an alert's subject must not start a new header.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The URL with any password replaced by `redacted` (brackets would be percent-encoded).
fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("redacted"));
            }
            parsed.to_string()
        }
        Err(_) => "[unparseable URL]".into(),
    }
}

/// The SMTP password in the forms it may take in error text: as written in the URL
/// (percent-encoded) and decoded, as it is sent.
struct Password {
    forms: Vec<String>,
}

impl Password {
    fn of(url: &Url) -> Password {
        let mut forms = Vec::new();
        if let Some(encoded) = url.password().filter(|p| !p.is_empty()) {
            let decoded = percent_decode(encoded);
            forms.push(encoded.to_owned());
            if decoded != encoded {
                forms.push(decoded);
            }
        }
        // Longest first, so a form containing another is replaced whole.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        Password { forms }
    }

    fn scrub(&self, text: &str) -> String {
        self.forms.iter().fold(text.to_owned(), |text, form| text.replace(form.as_str(), "[redacted]"))
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) =
                (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.extend(u8::try_from(high * 16 + low));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use ledgerlink_testkit::smtp::SmtpServer;

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    fn config(url: String) -> MailerConfig {
        MailerConfig { url, from: "ledgerlink <alerts@example.com>".into(), timeout: Duration::from_secs(10) }
    }

    fn recipient(name: &str, email: &str) -> Recipient {
        Recipient { name: name.into(), email: email.into() }
    }

    fn alert() -> Email {
        Email {
            to: vec![recipient("Ops", "ops@example.com")],
            subject: "Connection lost".into(),
            text: "QuickBooks stopped answering.\n".into(),
        }
    }

    /// `smtp://user:password@host:port` for the test server.
    fn url_with_credentials(server: &SmtpServer, user: &str, password: &str) -> String {
        format!("smtp://{user}:{password}@{}", server.addr())
    }

    #[tokio::test]
    async fn one_message_reaches_every_recipient_with_names_subject_and_body_intact() {
        let server = SmtpServer::start().await;
        let mailer = Mailer::new(&config(server.url())).unwrap();
        let email = Email {
            to: vec![
                recipient("Zoë Ångström", "zoe@example.com"),
                recipient("Ops, on call", "ops@example.com"),
            ],
            subject: "Connexion perdue — QuickBooks « Société Générale » ✓".into(),
            text: "Bonjour,\n\nla connexion à QuickBooks a échoué.\n.Une ligne qui commence par un point.\n"
                .into(),
        };

        mailer.send(&email).await.unwrap();

        let messages = server.wait_for(1, WAIT).await;
        assert_eq!(messages.len(), 1, "one message for all recipients");
        let message = &messages[0];
        assert_eq!(message.from, "alerts@example.com");
        assert_eq!(message.to, ["zoe@example.com", "ops@example.com"]);
        assert!(message.data.is_ascii(), "headers and body are encoded to 7-bit:\n{}", message.data);
        assert_eq!(message.subject().as_deref(), Some(email.subject.as_str()));
        assert_eq!(
            message.decoded_header("To").as_deref(),
            Some("Zoë Ångström <zoe@example.com>, Ops, on call <ops@example.com>")
        );
        // On the wire the comma travels inside an encoded-word, so it cannot split the list.
        assert!(!message.header("To").unwrap().contains(", on call"));
        assert_eq!(message.decoded_header("From").as_deref(), Some("ledgerlink <alerts@example.com>"));
        assert_eq!(message.body_text(), email.text);
        let content_type = message.header("Content-Type").unwrap().to_ascii_lowercase();
        assert_eq!(content_type, "text/plain; charset=utf-8");
        let message_id = message.header("Message-ID").unwrap();
        assert!(message_id.starts_with('<') && message_id.ends_with("@example.com>"), "{message_id}");
        assert!(message.header("Date").is_some());
    }

    #[tokio::test]
    async fn every_message_gets_its_own_message_id() {
        let server = SmtpServer::start().await;
        let mailer = Mailer::new(&config(server.url())).unwrap();
        mailer.send(&alert()).await.unwrap();
        mailer.send(&alert()).await.unwrap();
        let messages = server.wait_for(2, WAIT).await;
        assert_ne!(messages[0].header("Message-ID"), messages[1].header("Message-ID"));
    }

    #[tokio::test]
    async fn a_line_break_in_the_subject_cannot_add_a_header() {
        let server = SmtpServer::start().await;
        let mailer = Mailer::new(&config(server.url())).unwrap();
        let email = Email { subject: "Lost\r\nBcc: attacker@example.com".into(), ..alert() };
        mailer.send(&email).await.unwrap();
        let message = &server.wait_for(1, WAIT).await[0];
        assert_eq!(message.header("Bcc"), None);
        assert_eq!(message.to, ["ops@example.com"]);
        assert_eq!(message.subject().as_deref(), Some("Lost  Bcc: attacker@example.com"));
    }

    #[tokio::test]
    async fn correct_credentials_are_accepted_by_a_server_requiring_auth() {
        let server = SmtpServer::start_requiring_auth("alerts", "p@ss/wörd").await;
        let url = url_with_credentials(&server, "alerts", "p%40ss%2Fw%C3%B6rd");
        let mailer = Mailer::new(&config(url)).unwrap();
        mailer.send(&alert()).await.unwrap();
        assert_eq!(server.wait_for(1, WAIT).await[0].to, ["ops@example.com"]);
    }

    #[tokio::test]
    async fn a_refused_login_is_not_retryable_and_never_shows_the_password() {
        let server = SmtpServer::start_requiring_auth("alerts", "right").await;
        let url = url_with_credentials(&server, "alerts", "Wr0ng%2Fhunter2");
        let mailer = Mailer::new(&config(url)).unwrap();

        let error = mailer.send(&alert()).await.unwrap_err();

        assert!(matches!(error, MailError::Config(_) | MailError::Permanent(_)), "{error:?}");
        assert!(!error.is_transient());
        for text in [error.to_string(), format!("{error:?}"), format!("{mailer:?}")] {
            assert!(!text.contains("hunter2"), "the password leaked: {text}");
        }
        assert!(error.to_string().contains("535"), "the reply code helps whoever fixes it: {error}");
        assert!(server.messages().is_empty());
    }

    #[tokio::test]
    async fn credentials_for_a_server_without_auth_are_a_config_error() {
        let server = SmtpServer::start().await;
        let mailer = Mailer::new(&config(url_with_credentials(&server, "alerts", "hunter2"))).unwrap();
        let error = mailer.send(&alert()).await.unwrap_err();
        assert!(matches!(error, MailError::Config(_)), "{error:?}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[tokio::test]
    async fn a_451_reply_is_transient_and_a_later_retry_succeeds() {
        let server = SmtpServer::start().await;
        let mailer = Mailer::new(&config(server.url())).unwrap();
        server.set_failing(true);

        let error = mailer.send(&alert()).await.unwrap_err();
        assert!(matches!(error, MailError::Transient(_)), "{error:?}");
        assert!(error.to_string().contains("451"), "{error}");

        server.set_failing(false);
        mailer.send(&alert()).await.unwrap();
        assert_eq!(server.wait_for(1, WAIT).await.len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_transient() {
        // A port that was just free: nothing listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mailer = Mailer::new(&config(format!("smtp://{addr}"))).unwrap();
        let error = mailer.send(&alert()).await.unwrap_err();
        assert!(error.is_transient(), "{error:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_as_transient() {
        // The kernel completes the handshake, but no greeting ever comes.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", silent.local_addr().unwrap());
        let mailer =
            Mailer::new(&MailerConfig { timeout: Duration::from_millis(200), ..config(url) }).unwrap();
        let error =
            tokio::time::timeout(WAIT, mailer.send(&alert())).await.expect("the mailer's own timeout");
        assert!(error.unwrap_err().is_transient());
    }

    #[tokio::test]
    async fn a_bad_recipient_address_is_permanent_and_nothing_is_sent() {
        let server = SmtpServer::start().await;
        let mailer = Mailer::new(&config(server.url())).unwrap();
        let email = Email { to: vec![recipient("Ops", "not an address")], ..alert() };
        assert!(matches!(mailer.send(&email).await, Err(MailError::Permanent(_))));
        let nobody = Email { to: Vec::new(), ..alert() };
        assert!(matches!(mailer.send(&nobody).await, Err(MailError::Permanent(_))));
        assert!(server.messages().is_empty());
    }

    #[test]
    fn invalid_urls_and_from_addresses_are_config_errors_without_the_password() {
        for url in [
            "not a url",
            "ftp://user:hunter2@mail.example.com",
            "smtp://user:hunter2@mail.example.com:99999",
            "smtp://user:hunter2@mail.example.com?tls=sometimes",
            "smtp://user:hunter2@",
            "smtp://user:hunter2%FF@mail.example.com",
        ] {
            let error = Mailer::new(&config(url.into())).unwrap_err();
            assert!(matches!(error, MailError::Config(_)), "{url}: {error:?}");
            assert!(!format!("{error} {error:?}").contains("hunter2"), "{url}: {error}");
        }
        let bad_from = MailerConfig { from: "alerts at example".into(), ..config("smtp://localhost".into()) };
        assert!(matches!(Mailer::new(&bad_from), Err(MailError::Config(_))));
        let no_timeout = MailerConfig { timeout: Duration::ZERO, ..config("smtp://localhost".into()) };
        assert!(matches!(Mailer::new(&no_timeout), Err(MailError::Config(_))));
    }

    #[test]
    fn the_config_and_the_mailer_never_print_the_password() {
        let config = config("smtps://alerts:hunter2@mail.example.com".into());
        let mailer = Mailer::new(&config).unwrap();
        for text in [format!("{config:?}"), format!("{mailer:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("mail.example.com"), "{text}");
        }
        assert!(format!("{config:?}").contains("smtps://alerts:redacted@mail.example.com"));
    }

    #[test]
    fn passwords_are_scrubbed_encoded_and_decoded() {
        let url = Url::parse("smtp://u:a%2Fb%C3%A9@host").unwrap();
        let password = Password::of(&url);
        assert_eq!(password.scrub("x a/bé y a%2Fb%C3%A9 z"), "x [redacted] y [redacted] z");
    }
}
