//! A tiny SMTP server for tests, listening on a free loopback port.
//!
//! It speaks just enough of RFC 5321 for a real client such as lettre: EHLO/HELO, AUTH PLAIN and
//! LOGIN (only when started with [`SmtpServer::start_requiring_auth`]), MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP and QUIT. It never offers STARTTLS, so its [`SmtpServer::url`] is
//! plain `smtp://`. Every accepted message is kept as a [`ReceivedMail`], whose helpers decode
//! what a mailer encodes: RFC 2047 encoded-words in headers, quoted-printable or base64 bodies.
//!
//! Each connection is a small pipeline: a line is parsed into a [`Command`], the [`Connection`]
//! applies it to its session state and writes the reply. Dropping the server stops the accept
//! loop and every open connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

const SERVER_NAME: &str = "ledgerlink-testkit";

/// A running test SMTP server; stops when dropped.
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_loop: JoinHandle<()>,
}

/// State every connection shares with the test.
struct Shared {
    /// `(user, password)` when AUTH is required.
    credentials: Option<(String, String)>,
    failing: AtomicBool,
    messages: Mutex<Vec<ReceivedMail>>,
    /// How many messages have been received, so `wait_for` can wait without polling.
    received: watch::Sender<usize>,
}

impl Shared {
    fn messages(&self) -> MutexGuard<'_, Vec<ReceivedMail>> {
        // A panicking connection task must not hide the messages from the test.
        self.messages.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SmtpServer {
    /// Starts a server that accepts mail from anyone, on any number of connections.
    pub async fn start() -> SmtpServer {
        SmtpServer::start_with(None).await
    }

    /// Starts a server that advertises `AUTH PLAIN LOGIN` and answers `530` to `MAIL FROM` until
    /// the client has logged in with these credentials.
    pub async fn start_requiring_auth(user: &str, password: &str) -> SmtpServer {
        SmtpServer::start_with(Some((user.to_owned(), password.to_owned()))).await
    }

    async fn start_with(credentials: Option<(String, String)>) -> SmtpServer {
        let listener =
            TcpListener::bind("127.0.0.1:0").await.expect("bind the test SMTP server on 127.0.0.1:0");
        let addr = listener.local_addr().expect("the test SMTP server's address");
        let shared = Arc::new(Shared {
            credentials,
            failing: AtomicBool::new(false),
            messages: Mutex::new(Vec::new()),
            received: watch::Sender::new(0),
        });
        let accept_loop = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        SmtpServer { addr, shared, accept_loop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection URL for the mailer: plain SMTP, no TLS, no credentials.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.messages().clone()
    }

    /// Waits until at least `n` messages have arrived and returns them all.
    ///
    /// # Panics
    ///
    /// When they have not arrived within `timeout`, listing what did arrive.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let mut received = self.shared.received.subscribe();
        if tokio::time::timeout(timeout, received.wait_for(|count| *count >= n)).await.is_err() {
            let messages = self.messages();
            let summary: Vec<String> = messages
                .iter()
                .map(|m| format!("from {:?} to {:?}, subject {:?}", m.from, m.to, m.subject()))
                .collect();
            panic!(
                "the test SMTP server expected at least {n} message(s) within {timeout:?} but received {}: {summary:#?}",
                messages.len()
            );
        }
        self.messages()
    }

    /// While on, `MAIL` and `DATA` are answered `451` (a temporary failure), so retries can be
    /// tested; turning it off lets the next attempt through.
    pub fn set_failing(&self, on: bool) {
        self.shared.failing.store(on, Ordering::SeqCst);
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // The accept loop owns the connection tasks: aborting it drops its JoinSet, which aborts them.
        self.accept_loop.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: back off rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(Connection::new(stream, Arc::clone(&shared)).serve());
    }
}

/// A message as the server accepted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The `MAIL FROM` address (empty for the null reverse-path `<>`).
    pub from: String,
    /// The `RCPT TO` addresses, in order.
    pub to: Vec<String>,
    /// The raw message sent after `DATA`, dot-unstuffed, without the terminating `.` line.
    pub data: String,
}

impl ReceivedMail {
    /// The first header with this name (case-insensitive), unfolded, still encoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = split_message(&self.data);
        header_in(&parse_headers(head), name)
    }

    /// The first header with this name with its RFC 2047 encoded-words decoded.
    pub fn decoded_header(&self, name: &str) -> Option<String> {
        self.header(name).map(|value| decode_encoded_words(&value))
    }

    /// The `Subject`, decoded if it holds UTF-8 encoded-words (`B` or `Q`).
    pub fn subject(&self) -> Option<String> {
        self.decoded_header("Subject")
    }

    /// The text/plain body with its transfer encoding (quoted-printable, base64 or none) undone
    /// and CRLF line endings turned into `\n`. For a multipart message, its first text/plain part.
    pub fn body_text(&self) -> String {
        text_of_part(&self.data).unwrap_or_default()
    }
}

// ---- connection: line → command → apply → reply ----

/// One SMTP command line, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Ehlo(String),
    Helo(String),
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    Mail(String),
    Rcpt(String),
    Data,
    Rset,
    Noop,
    Quit,
    /// Recognised but malformed; the reply text to send with `501`.
    Syntax(&'static str),
    Unknown,
}

impl Command {
    fn parse(line: &str) -> Command {
        let (verb, argument) = line.split_once(' ').unwrap_or((line, ""));
        let argument = argument.trim();
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" if argument.is_empty() => Command::Syntax("5.5.4 Syntax: EHLO domain"),
            "EHLO" => Command::Ehlo(argument.to_owned()),
            "HELO" if argument.is_empty() => Command::Syntax("5.5.4 Syntax: HELO domain"),
            "HELO" => Command::Helo(argument.to_owned()),
            "AUTH" => {
                let mut words = argument.split_whitespace();
                match words.next() {
                    Some(mechanism) => Command::Auth {
                        mechanism: mechanism.to_ascii_uppercase(),
                        initial: words.next().map(str::to_owned),
                    },
                    None => Command::Syntax("5.5.4 Syntax: AUTH mechanism [initial-response]"),
                }
            }
            "MAIL" => match path_after(argument, "FROM:") {
                Some(from) => Command::Mail(from),
                None => Command::Syntax("5.5.4 Syntax: MAIL FROM:<address>"),
            },
            "RCPT" => match path_after(argument, "TO:") {
                Some(to) if !to.is_empty() => Command::Rcpt(to),
                _ => Command::Syntax("5.5.4 Syntax: RCPT TO:<address>"),
            },
            "DATA" => Command::Data,
            "RSET" => Command::Rset,
            "NOOP" => Command::Noop,
            "QUIT" => Command::Quit,
            _ => Command::Unknown,
        }
    }
}

/// The address in `FROM:<a@b> PARAMS` (ESMTP parameters such as `BODY=8BITMIME` are ignored).
fn path_after(argument: &str, keyword: &str) -> Option<String> {
    let prefix = argument.get(..keyword.len())?;
    if !prefix.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let path = argument[keyword.len()..].trim_start().strip_prefix('<')?;
    let (address, _parameters) = path.split_once('>')?;
    Some(address.to_owned())
}

/// Whether the connection should go on after a command.
enum Flow {
    Continue,
    Close,
}

struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    shared: Arc<Shared>,
    greeted: bool,
    authenticated: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl Connection {
    fn new(stream: TcpStream, shared: Arc<Shared>) -> Connection {
        let (reader, writer) = stream.into_split();
        Connection {
            reader: BufReader::new(reader),
            writer,
            shared,
            greeted: false,
            authenticated: false,
            mail_from: None,
            rcpt_to: Vec::new(),
        }
    }

    async fn serve(mut self) {
        // A client that hangs up mid-conversation is not the test server's failure.
        let _ = self.converse().await;
    }

    async fn converse(&mut self) -> std::io::Result<()> {
        self.reply(&format!("220 {SERVER_NAME} ESMTP ready")).await?;
        while let Some(line) = self.read_line().await? {
            let line = String::from_utf8_lossy(&line);
            let command = Command::parse(line.trim_end_matches(['\r', '\n']));
            if let Flow::Close = self.apply(command).await? {
                break;
            }
        }
        Ok(())
    }

    async fn apply(&mut self, command: Command) -> std::io::Result<Flow> {
        match command {
            Command::Ehlo(domain) => {
                self.greet();
                let mut lines = vec![
                    format!("{SERVER_NAME} greets {domain}"),
                    "8BITMIME".into(),
                    "SMTPUTF8".into(),
                    "ENHANCEDSTATUSCODES".into(),
                ];
                if self.shared.credentials.is_some() {
                    lines.push("AUTH PLAIN LOGIN".into());
                }
                self.reply_lines(250, &lines).await?;
            }
            Command::Helo(domain) => {
                self.greet();
                self.reply(&format!("250 {SERVER_NAME} greets {domain}")).await?;
            }
            Command::Auth { mechanism, initial } => self.authenticate(&mechanism, initial).await?,
            Command::Mail(from) => {
                let reply = if !self.greeted {
                    "503 5.5.1 Send EHLO or HELO first"
                } else if self.shared.credentials.is_some() && !self.authenticated {
                    "530 5.7.0 Authentication required"
                } else if self.shared.failing.load(Ordering::SeqCst) {
                    "451 4.3.0 Temporary failure, try again later"
                } else if self.mail_from.is_some() {
                    "503 5.5.1 Nested MAIL command"
                } else {
                    self.mail_from = Some(from);
                    "250 2.1.0 Sender OK"
                };
                self.reply(reply).await?;
            }
            Command::Rcpt(to) => {
                let reply = if self.mail_from.is_none() {
                    "503 5.5.1 Need MAIL command"
                } else {
                    self.rcpt_to.push(to);
                    "250 2.1.5 Recipient OK"
                };
                self.reply(reply).await?;
            }
            Command::Data => {
                if self.rcpt_to.is_empty() {
                    self.reply("503 5.5.1 Need RCPT command").await?;
                } else if self.shared.failing.load(Ordering::SeqCst) {
                    self.reset();
                    self.reply("451 4.3.0 Temporary failure, try again later").await?;
                } else {
                    self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
                    let Some(data) = self.read_data().await? else {
                        return Ok(Flow::Close);
                    };
                    self.accept(data);
                    self.reply("250 2.0.0 OK: queued").await?;
                }
            }
            Command::Rset => {
                self.reset();
                self.reply("250 2.0.0 OK").await?;
            }
            Command::Noop => self.reply("250 2.0.0 OK").await?,
            Command::Quit => {
                self.reply("221 2.0.0 Bye").await?;
                return Ok(Flow::Close);
            }
            Command::Syntax(message) => self.reply(&format!("501 {message}")).await?,
            Command::Unknown => self.reply("500 5.5.2 Command not recognized").await?,
        }
        Ok(Flow::Continue)
    }

    /// EHLO and HELO start over: any transaction in progress is dropped (RFC 5321 §4.1.4).
    fn greet(&mut self) {
        self.greeted = true;
        self.reset();
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    fn accept(&mut self, data: Vec<u8>) {
        let mail = ReceivedMail {
            from: self.mail_from.take().unwrap_or_default(),
            to: std::mem::take(&mut self.rcpt_to),
            data: String::from_utf8_lossy(&data).into_owned(),
        };
        let count = {
            let mut messages = self.shared.messages();
            messages.push(mail);
            messages.len()
        };
        self.shared.received.send_replace(count);
    }

    async fn authenticate(&mut self, mechanism: &str, initial: Option<String>) -> std::io::Result<()> {
        let Some((user, password)) = self.shared.credentials.clone() else {
            return self.reply("502 5.5.1 AUTH not available").await;
        };
        if !self.greeted {
            return self.reply("503 5.5.1 Send EHLO first").await;
        }
        if self.authenticated {
            return self.reply("503 5.5.1 Already authenticated").await;
        }
        if self.mail_from.is_some() {
            return self.reply("503 5.5.1 AUTH not allowed during a mail transaction").await;
        }
        let offered = match mechanism {
            "PLAIN" => {
                let Some(response) = self.auth_response(initial, "").await? else {
                    return Ok(());
                };
                // authzid NUL authcid NUL password
                let mut fields = response.split(|b| *b == 0);
                match (fields.next(), fields.next(), fields.next(), fields.next()) {
                    (Some(_authzid), Some(u), Some(p), None) => Some((u.to_vec(), p.to_vec())),
                    _ => None,
                }
            }
            "LOGIN" => {
                // The challenges are base64 for "Username:" and "Password:".
                let Some(u) = self.auth_response(initial, "VXNlcm5hbWU6").await? else {
                    return Ok(());
                };
                let Some(p) = self.auth_response(None, "UGFzc3dvcmQ6").await? else {
                    return Ok(());
                };
                Some((u, p))
            }
            _ => return self.reply("504 5.5.4 Unrecognized authentication type").await,
        };
        if offered == Some((user.into_bytes(), password.into_bytes())) {
            self.authenticated = true;
            self.reply("235 2.7.0 Authentication successful").await
        } else {
            self.reply("535 5.7.8 Authentication credentials invalid").await
        }
    }

    /// The decoded client response: the initial one if given, else the answer to a `334`
    /// challenge. `None` once the exchange has been answered with an error (cancel, bad base64).
    async fn auth_response(
        &mut self,
        initial: Option<String>,
        challenge: &str,
    ) -> std::io::Result<Option<Vec<u8>>> {
        let encoded = match initial {
            Some(initial) => initial,
            None => {
                self.reply(&format!("334 {challenge}")).await?;
                match self.read_line().await? {
                    Some(line) => String::from_utf8_lossy(&line).trim().to_owned(),
                    None => return Ok(None),
                }
            }
        };
        if encoded == "*" {
            self.reply("501 5.7.0 Authentication cancelled").await?;
            return Ok(None);
        }
        // "=" is the initial response for an empty string (RFC 4954).
        let decoded = if encoded == "=" { Ok(Vec::new()) } else { BASE64.decode(&encoded) };
        match decoded {
            Ok(bytes) => Ok(Some(bytes)),
            Err(_) => {
                self.reply("501 5.5.2 Cannot decode the base64 response").await?;
                Ok(None)
            }
        }
    }

    /// The message after `354`, up to the lone `.` line; `None` if the client hung up first.
    async fn read_data(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut data = Vec::new();
        loop {
            let Some(line) = self.read_line().await? else {
                return Ok(None);
            };
            if line == b".\r\n" || line == b".\n" {
                return Ok(Some(data));
            }
            // Dot-unstuffing: the client doubled every leading dot (RFC 5321 §4.5.2).
            data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
        }
    }

    /// One line including its line ending; `None` at end of stream.
    async fn read_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line).await?;
        Ok((n > 0).then_some(line))
    }

    async fn reply(&mut self, line: &str) -> std::io::Result<()> {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).await
    }

    /// A multi-line reply: `code-` on every line but the last, which has `code `.
    async fn reply_lines(&mut self, code: u16, lines: &[String]) -> std::io::Result<()> {
        let mut text = String::new();
        for (i, line) in lines.iter().enumerate() {
            let separator = if i + 1 == lines.len() { ' ' } else { '-' };
            text.push_str(&format!("{code}{separator}{line}\r\n"));
        }
        self.writer.write_all(text.as_bytes()).await
    }
}

// ---- message decoding ----

/// Splits a message at its first empty line into the header block and the body.
fn split_message(message: &str) -> (&str, &str) {
    let mut offset = 0;
    for line in message.split_inclusive('\n') {
        if line.trim_end_matches(['\r', '\n']).is_empty() {
            return (&message[..offset], &message[offset + line.len()..]);
        }
        offset += line.len();
    }
    (message, "")
}

/// `(name, value)` pairs with folded lines joined (unfolding removes only the line breaks).
fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    for (_, value) in &mut headers {
        *value = value.trim().to_owned();
    }
    headers
}

fn header_in(headers: &[(String, String)], name: &str) -> Option<String> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
}

/// The decoded text of a text/plain entity, or of the first text/plain part inside a multipart one.
fn text_of_part(entity: &str) -> Option<String> {
    let (head, body) = split_message(entity);
    let headers = parse_headers(head);
    let content_type = header_in(&headers, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let media_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if media_type.starts_with("multipart/") {
        let boundary = parameter(&content_type, "boundary")?;
        return multipart_parts(body, &boundary).into_iter().find_map(|part| text_of_part(&part));
    }
    if media_type != "text/plain" {
        return None;
    }
    // The line break before the end of DATA (or before a boundary) ends the transport, not the text.
    let body = body.strip_suffix("\r\n").or_else(|| body.strip_suffix('\n')).unwrap_or(body);
    let encoding = header_in(&headers, "Content-Transfer-Encoding").unwrap_or_default().to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            BASE64
                .decode(compact)
                .unwrap_or_else(|e| panic!("the message's base64 body does not decode: {e}"))
        }
        _ => body.as_bytes().to_vec(),
    };
    Some(String::from_utf8_lossy(&bytes).replace("\r\n", "\n"))
}

/// A parameter of a header such as `Content-Type: multipart/alternative; boundary="abc"`.
fn parameter(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The parts between `--boundary` lines, each with its own headers.
fn multipart_parts(body: &str, boundary: &str) -> Vec<String> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut current: Option<String> = None;
    for line in body.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == delimiter || bare == format!("{delimiter}--") {
            if let Some(part) = current.take() {
                parts.push(part);
            }
            if bare != delimiter {
                break;
            }
            current = Some(String::new());
        } else if let Some(part) = &mut current {
            part.push_str(line);
        }
    }
    parts
}

fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let rest = &bytes[i + 1..];
            // A soft line break: "=" then optional transport padding, then the line ending.
            let padding = rest.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
            let after = &rest[padding..];
            if after.is_empty() {
                break;
            }
            if after.starts_with(b"\r\n") || after.starts_with(b"\n") {
                i += 1 + padding + if after[0] == b'\r' { 2 } else { 1 };
                continue;
            }
            if let Some(byte) = rest.get(..2).and_then(hex_byte) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()
}

/// Decodes RFC 2047 encoded-words (`=?utf-8?B?…?=`, `=?utf-8?Q?…?=`) in a header value.
///
/// Whitespace between adjacent encoded-words is dropped (§6.2), and their bytes are joined
/// before UTF-8 decoding, since an encoder may split a character across two words.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut run: Option<Vec<u8>> = None;
    let flush = |out: &mut String, run: &mut Option<Vec<u8>>| {
        if let Some(bytes) = run.take() {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    };
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        match parse_encoded_word(candidate) {
            Some((bytes, len)) => {
                if run.is_none() || !before.chars().all(char::is_whitespace) {
                    flush(&mut out, &mut run);
                    out.push_str(before);
                }
                run.get_or_insert_with(Vec::new).extend(bytes);
                rest = &candidate[len..];
            }
            None => {
                flush(&mut out, &mut run);
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
            }
        }
    }
    flush(&mut out, &mut run);
    out.push_str(rest);
    out
}

/// The decoded bytes of the encoded-word at the start of `text`, and its length.
fn parse_encoded_word(text: &str) -> Option<(Vec<u8>, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let encoded = &inner[..end];
    if encoded.contains(char::is_whitespace) {
        return None;
    }
    // RFC 2231 allows a language after the charset: utf-8*en.
    let charset = charset.split('*').next().unwrap_or_default();
    if !(charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii")) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => BASE64.decode(encoded).ok()?,
        "Q" | "q" => {
            let underscores_as_spaces = encoded.replace('_', "=20");
            decode_quoted_printable(&underscores_as_spaces)
        }
        _ => return None,
    };
    let after = &inner[end + 2..];
    Some((bytes, text.len() - after.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw SMTP client: send a line, read a (possibly multi-line) reply.
    struct Client {
        reader: BufReader<OwnedReadHalf>,
        writer: OwnedWriteHalf,
    }

    impl Client {
        async fn connect(server: &SmtpServer) -> Client {
            let (reader, writer) = TcpStream::connect(server.addr()).await.expect("connect").into_split();
            let mut client = Client { reader: BufReader::new(reader), writer };
            let greeting = client.read_reply().await;
            assert!(greeting.starts_with("220 "), "greeting: {greeting}");
            client
        }

        async fn read_reply(&mut self) -> String {
            let mut reply = String::new();
            loop {
                let mut line = String::new();
                let n = self.reader.read_line(&mut line).await.expect("read a reply line");
                assert!(n > 0, "the server closed the connection; reply so far: {reply:?}");
                reply.push_str(&line);
                // The last line of a reply has a space after the code.
                if line.as_bytes().get(3) != Some(&b'-') {
                    return reply;
                }
            }
        }

        async fn send(&mut self, line: &str) -> String {
            self.writer.write_all(format!("{line}\r\n").as_bytes()).await.expect("write a command");
            self.read_reply().await
        }

        async fn expect(&mut self, line: &str, code: &str) -> String {
            let reply = self.send(line).await;
            assert!(reply.starts_with(code), "{line:?} should be answered {code}, got {reply:?}");
            reply
        }
    }

    fn b64(text: &str) -> String {
        BASE64.encode(text)
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn ehlo_lists_the_extensions_in_a_multi_line_reply_without_auth_or_starttls() {
        let server = SmtpServer::start().await;
        let mut client = Client::connect(&server).await;
        let reply = client.expect("EHLO client.example", "250").await;
        let lines: Vec<&str> = reply.lines().collect();
        assert!(lines[..lines.len() - 1].iter().all(|l| l.starts_with("250-")), "{reply}");
        assert!(lines[lines.len() - 1].starts_with("250 "), "{reply}");
        assert!(reply.contains("8BITMIME") && reply.contains("SMTPUTF8"), "{reply}");
        assert!(!reply.contains("AUTH") && !reply.contains("STARTTLS"), "{reply}");
        client.expect("QUIT", "221").await;
    }

    #[tokio::test]
    async fn a_message_is_received_with_its_envelope_and_dots_unstuffed() {
        let server = SmtpServer::start().await;
        let mut client = Client::connect(&server).await;
        client.expect("HELO client.example", "250").await;
        client.expect("MAIL FROM:<alerts@example.com> BODY=8BITMIME", "250").await;
        client.expect("RCPT TO:<a@example.com>", "250").await;
        client.expect("RCPT TO: <b@example.com>", "250").await;
        client.expect("DATA", "354").await;
        client.expect("Subject: hi\r\n\r\nline one\r\n..leading dot\r\n.", "250").await;
        client.expect("NOOP", "250").await;
        client.expect("QUIT", "221").await;

        let messages = server.wait_for(1, TIMEOUT).await;
        assert_eq!(
            messages,
            vec![ReceivedMail {
                from: "alerts@example.com".into(),
                to: vec!["a@example.com".into(), "b@example.com".into()],
                data: "Subject: hi\r\n\r\nline one\r\n.leading dot\r\n".into(),
            }]
        );
        assert_eq!(messages[0].subject().as_deref(), Some("hi"));
        assert_eq!(messages[0].body_text(), "line one\n.leading dot");
    }

    #[tokio::test]
    async fn commands_out_of_order_are_refused_and_rset_starts_over() {
        let server = SmtpServer::start().await;
        let mut client = Client::connect(&server).await;
        client.expect("MAIL FROM:<a@example.com>", "503").await;
        client.expect("EHLO client.example", "250").await;
        client.expect("RCPT TO:<b@example.com>", "503").await;
        client.expect("DATA", "503").await;
        client.expect("MAIL FROM:<a@example.com>", "250").await;
        client.expect("MAIL FROM:<a@example.com>", "503").await;
        client.expect("RSET", "250").await;
        client.expect("RCPT TO:<b@example.com>", "503").await;
        client.expect("MAIL FROM:<>", "250").await;
        client.expect("RCPT TO:b@example.com", "501").await;
        client.expect("AUTH PLAIN", "502").await;
        client.expect("VRFY someone", "500").await;
        client.expect("QUIT", "221").await;
        assert!(server.messages().is_empty());
    }

    #[tokio::test]
    async fn with_auth_required_mail_is_refused_until_a_plain_login_succeeds() {
        let server = SmtpServer::start_requiring_auth("alerts", "s3cret").await;
        let mut client = Client::connect(&server).await;
        let ehlo = client.expect("EHLO client.example", "250").await;
        assert!(ehlo.contains("250 AUTH PLAIN LOGIN"), "{ehlo}");
        client.expect("MAIL FROM:<a@example.com>", "530").await;
        client.expect(&format!("AUTH PLAIN {}", b64("\0alerts\0wrong")), "535").await;
        client.expect("AUTH PLAIN not-base64!", "501").await;
        client.expect("AUTH CRAM-MD5", "504").await;
        // Without an initial response the server asks for it with an empty 334.
        client.expect("AUTH PLAIN", "334").await;
        client.expect(&b64("\0alerts\0s3cret"), "235").await;
        client.expect("AUTH PLAIN", "503").await;
        client.expect("MAIL FROM:<a@example.com>", "250").await;
    }

    #[tokio::test]
    async fn auth_login_asks_for_the_user_name_then_the_password() {
        let server = SmtpServer::start_requiring_auth("alerts", "s3cret").await;
        let mut client = Client::connect(&server).await;
        client.expect("EHLO client.example", "250").await;
        assert_eq!(client.expect("AUTH LOGIN", "334").await, "334 VXNlcm5hbWU6\r\n");
        assert_eq!(client.expect(&b64("alerts"), "334").await, "334 UGFzc3dvcmQ6\r\n");
        client.expect(&b64("nope"), "535").await;
        client.expect("AUTH LOGIN", "334").await;
        client.expect("*", "501").await;
        client.expect(&format!("AUTH LOGIN {}", b64("alerts")), "334").await;
        client.expect(&b64("s3cret"), "235").await;
        client.expect("MAIL FROM:<a@example.com>", "250").await;
    }

    #[tokio::test]
    async fn while_failing_mail_and_data_get_451_and_afterwards_mail_goes_through() {
        let server = SmtpServer::start().await;
        let mut client = Client::connect(&server).await;
        client.expect("EHLO client.example", "250").await;
        client.expect("MAIL FROM:<a@example.com>", "250").await;
        client.expect("RCPT TO:<b@example.com>", "250").await;
        server.set_failing(true);
        client.expect("DATA", "451").await;
        client.expect("MAIL FROM:<a@example.com>", "451").await;
        server.set_failing(false);
        client.expect("MAIL FROM:<a@example.com>", "250").await;
        client.expect("RCPT TO:<b@example.com>", "250").await;
        client.expect("DATA", "354").await;
        client.expect("\r\nhello\r\n.", "250").await;
        assert_eq!(server.wait_for(1, TIMEOUT).await.len(), 1);
    }

    #[tokio::test]
    async fn connections_are_served_concurrently() {
        let server = SmtpServer::start().await;
        let mut first = Client::connect(&server).await;
        let mut second = Client::connect(&server).await;
        for (client, n) in [(&mut first, 1), (&mut second, 2)] {
            client.expect("EHLO client.example", "250").await;
            client.expect("MAIL FROM:<a@example.com>", "250").await;
            client.expect(&format!("RCPT TO:<{n}@example.com>"), "250").await;
            client.expect("DATA", "354").await;
            client.expect(&format!("\r\nmessage {n}\r\n."), "250").await;
        }
        let messages = server.wait_for(2, TIMEOUT).await;
        assert_eq!(
            messages.iter().map(ReceivedMail::body_text).collect::<Vec<_>>(),
            ["message 1", "message 2"]
        );
    }

    #[tokio::test]
    #[should_panic(expected = "expected at least 1 message(s)")]
    async fn wait_for_panics_when_nothing_arrives_in_time() {
        let server = SmtpServer::start().await;
        server.wait_for(1, Duration::from_millis(50)).await;
    }

    fn mail(data: &str) -> ReceivedMail {
        ReceivedMail { from: String::new(), to: Vec::new(), data: data.into() }
    }

    #[test]
    fn headers_are_unfolded_and_encoded_words_decoded() {
        let message = mail(
            "Subject: =?utf-8?b?Q29ubmV4aW9uIHBlcmR1ZSDigJQg?=\r\n =?utf-8?q?QuickBooks_=E2=9C=93?=\r\n\
             To: =?utf-8?b?Wm/Dqw==?= <zoe@example.com>, Ops <ops@example.com>\r\nX-Plain: a\r\n\tb\r\n\r\nbody\r\n",
        );
        assert_eq!(message.subject().as_deref(), Some("Connexion perdue — QuickBooks ✓"));
        assert_eq!(
            message.decoded_header("to").as_deref(),
            Some("Zoë <zoe@example.com>, Ops <ops@example.com>")
        );
        assert_eq!(message.header("X-PLAIN").as_deref(), Some("a\tb"));
        assert_eq!(message.header("Missing"), None);
    }

    #[test]
    fn encoded_words_split_inside_a_character_are_joined_before_decoding() {
        // "é" is C3 A9; each word carries one byte of it.
        assert_eq!(decode_encoded_words("caf=?utf-8?q?=C3?= =?UTF-8?Q?=A9?= au lait"), "café au lait");
        assert_eq!(decode_encoded_words("=?iso-8859-1?q?caf=E9?="), "=?iso-8859-1?q?caf=E9?=");
        assert_eq!(decode_encoded_words("not =? a word"), "not =? a word");
    }

    #[test]
    fn quoted_printable_and_base64_bodies_are_decoded() {
        let qp = mail(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
             la connexion a =C3=A9chou=C3=A9, une tr=\r\n=C3=A8s longue ligne\r\nfin\r\n",
        );
        assert_eq!(qp.body_text(), "la connexion a échoué, une très longue ligne\nfin");
        let base64 = mail(&format!(
            "Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            BASE64.encode("première ligne\r\nseconde\r\n")
        ));
        assert_eq!(base64.body_text(), "première ligne\nseconde\n");
    }

    #[test]
    fn the_text_part_of_a_multipart_message_is_found() {
        let message = mail(
            "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n\
             Content-Type: text/html\r\n\r\n<p>hi</p>\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9\r\n--b1--\r\n",
        );
        assert_eq!(message.body_text(), "hé");
    }
}
