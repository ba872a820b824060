//! A real SMTP server over TCP for tests: enough ESMTP for lettre (EHLO with 8BITMIME,
//! SMTPUTF8, PIPELINING; optional AUTH PLAIN/LOGIN; MAIL, RCPT, DATA with dot-unstuffing,
//! RSET, NOOP, QUIT; STARTTLS or implicit TLS with the test CA). It records every accepted
//! message, counts connections, and answers a chosen code for a chosen recipient, so tests
//! see exactly what a relay would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One message the server accepted (2xx after the data).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The MAIL FROM path without angle brackets.
    pub from: String,
    /// The RCPT TO paths without angle brackets, exactly as the client wrote them.
    pub to: Vec<String>,
    /// The message as sent, dot-unstuffed, CRLF line ends, without the final `.` line.
    pub data: Vec<u8>,
    /// Whether it came over TLS (implicit, or after STARTTLS).
    pub secured: bool,
    /// Whether the client sent RCPT before the reply to MAIL (PIPELINING, RFC 2920).
    pub pipelined: bool,
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Rcpt,
    Data,
}

/// The data rule that answers nothing and closes the connection.
const DROP_AFTER_DATA: u16 = 0;

#[derive(Default)]
struct State {
    received: Mutex<Vec<ReceivedMail>>,
    /// Recipient path → (reply code, when to answer it).
    rules: Mutex<HashMap<String, (u16, Stage)>>,
    credentials: Mutex<Option<(String, String)>>,
    connections: std::sync::atomic::AtomicUsize,
    /// How long each accepted message takes before its 250 (a slow relay).
    delay: Mutex<Duration>,
    /// Per recipient domain: messages being taken now, and the most at once.
    in_flight: Mutex<HashMap<String, (usize, usize)>>,
    /// EHLO leaves PIPELINING out.
    no_pipelining: std::sync::atomic::AtomicBool,
}

/// How a server offers TLS (with the certificate of `push_servers::test_ca`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsOffer {
    None,
    /// Plain greeting, STARTTLS advertised in EHLO.
    StartTls,
    /// TLS from the first byte (port 465 style).
    Implicit,
}

/// What a session runs over: TCP, or TLS on top of it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

pub struct SmtpServer {
    pub addr: SocketAddr,
    tls: TlsOffer,
    state: Arc<State>,
    /// Counts accepted messages; waiters watch it instead of sleeping.
    accepted: watch::Receiver<usize>,
    /// Bumped by `disconnect_all`: every open connection says 421 and closes.
    kick: Arc<watch::Sender<u64>>,
    /// Sessions currently open.
    open: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    /// Listens on 127.0.0.1 at a free port.
    pub async fn start() -> SmtpServer {
        SmtpServer::start_with(TlsOffer::None).await
    }

    /// Listens on 127.0.0.1 at a free port, offering TLS as `tls` says.
    pub async fn start_with(tls: TlsOffer) -> SmtpServer {
        let acceptor = (tls != TlsOffer::None)
            .then(|| tokio_rustls::TlsAcceptor::from(crate::push_servers::test_ca().server_config()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the test SMTP server");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let (accepted_tx, accepted) = watch::channel(0usize);
        let accepted_tx = Arc::new(accepted_tx);
        let kick = Arc::new(watch::channel(0u64).0);
        let (open_tx, open) = watch::channel(0usize);
        let open_tx = Arc::new(open_tx);
        let task = tokio::spawn({
            let state = Arc::clone(&state);
            let accepted_tx = Arc::clone(&accepted_tx);
            let kick = Arc::clone(&kick);
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    state.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    open_tx.send_modify(|open| *open += 1);
                    let mut session = Session {
                        state: Arc::clone(&state),
                        accepted: Arc::clone(&accepted_tx),
                        kick: kick.subscribe(),
                        acceptor: acceptor.clone(),
                    };
                    let open_tx = Arc::clone(&open_tx);
                    tokio::spawn(async move {
                        let stream: Option<Box<dyn Io>> = match (&session.acceptor, tls) {
                            (Some(acceptor), TlsOffer::Implicit) => {
                                acceptor.accept(stream).await.ok().map(|s| Box::new(s) as _)
                            }
                            _ => Some(Box::new(stream)),
                        };
                        // A session runs again over TLS after STARTTLS, without a new greeting.
                        let (mut stream, mut secured) = (stream, tls == TlsOffer::Implicit);
                        let mut greet = true;
                        while let Some(current) = stream.take() {
                            stream = session.run(current, secured, greet).await;
                            (secured, greet) = (true, false);
                        }
                        open_tx.send_modify(|open| *open -= 1);
                    });
                }
            }
        });
        SmtpServer { addr, tls, state, accepted, kick, open, task }
    }

    /// `smtp://127.0.0.1:PORT` for `Config::smtp_url` (`smtps://`, `?tls=starttls` with TLS).
    pub fn url(&self) -> url::Url {
        let url = match self.tls {
            TlsOffer::None => format!("smtp://{}", self.addr),
            TlsOffer::StartTls => format!("smtp://{}?tls=starttls", self.addr),
            TlsOffer::Implicit => format!("smtps://{}", self.addr),
        };
        url::Url::parse(&url).unwrap()
    }

    /// Reply `code` (5xx) to RCPT for this recipient path (as the client writes it).
    pub fn reject(&self, recipient: &str, code: u16) {
        self.state.rules.lock().unwrap().insert(recipient.to_string(), (code, Stage::Rcpt));
    }

    /// Accept this recipient again (drops a reject or defer rule).
    pub fn accept(&self, recipient: &str) {
        self.state.rules.lock().unwrap().remove(recipient);
    }

    /// Reply `code` (4xx) to RCPT for this recipient path.
    pub fn defer(&self, recipient: &str, code: u16) {
        self.reject(recipient, code);
    }

    /// Accept RCPT but answer `code` after the data (content refused, e.g. 554).
    pub fn reject_data(&self, recipient: &str, code: u16) {
        self.state.rules.lock().unwrap().insert(recipient.to_string(), (code, Stage::Data));
    }

    /// Take the whole message for this recipient, then close the connection without a
    /// reply (a relay that crashes or loses the network at the end of DATA).
    pub fn drop_after_data(&self, recipient: &str) {
        self.reject_data(recipient, DROP_AFTER_DATA);
    }

    /// The most messages for `domain` that were being taken at the same time.
    pub fn most_at_once(&self, domain: &str) -> usize {
        self.state.in_flight.lock().unwrap().get(domain).map_or(0, |(_, most)| *most)
    }

    /// Stop offering PIPELINING (from the next EHLO on).
    pub fn without_pipelining(&self) {
        self.state.no_pipelining.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Take `delay` over each message before accepting it.
    pub fn slow_down(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Offer AUTH PLAIN/LOGIN and refuse MAIL (530) until the client logs in with these.
    pub fn require_auth(&self, username: &str, password: &str) {
        *self.state.credentials.lock().unwrap() = Some((username.to_string(), password.to_string()));
    }

    /// Every open connection answers 421 and closes, as a server does on idle timeout;
    /// returns once all of them are closed.
    pub async fn disconnect_all(&self) {
        self.kick.send_modify(|generation| *generation += 1);
        let mut open = self.open.clone();
        tokio::time::timeout(Duration::from_secs(10), open.wait_for(|open| *open == 0))
            .await
            .expect("connections close after 421")
            .expect("the server is running");
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The messages accepted so far.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until at least `n` messages were accepted, then returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<ReceivedMail> {
        let mut accepted = self.accepted.clone();
        tokio::time::timeout(Duration::from_secs(10), accepted.wait_for(|count| *count >= n))
            .await
            .unwrap_or_else(|_| panic!("expected {n} messages, got {}", self.received().len()))
            .expect("the server is running");
        self.received()
    }
}

struct Session {
    state: Arc<State>,
    accepted: Arc<watch::Sender<usize>>,
    kick: watch::Receiver<u64>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
}

#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
    data_rule: Option<u16>,
    pipelined: bool,
}

/// The path inside `<…>` after `MAIL FROM:` / `RCPT TO:`, parameters dropped.
fn path(argument: &str) -> Option<String> {
    let start = argument.find('<')?;
    let end = argument.rfind('>')?;
    (end > start).then(|| argument[start + 1..end].to_string())
}

impl Session {
    /// Serves one connection; returns the TLS stream to go on with after STARTTLS.
    async fn run(&mut self, stream: Box<dyn Io>, secured: bool, greet: bool) -> Option<Box<dyn Io>> {
        let (read, mut write) = tokio::io::split(stream);
        let mut reader = BufReader::new(read);
        let mut envelope = Envelope::default();
        let mut authenticated = false;
        let auth_required = self.state.credentials.lock().unwrap().is_some();
        macro_rules! reply {
            ($($arg:tt)*) => {
                if write.write_all(format!($($arg)*).as_bytes()).await.is_err() {
                    return None;
                }
            };
        }
        if greet {
            reply!("220 localhost ESMTP renrakumo-test\r\n");
        }
        loop {
            let mut line = Vec::new();
            tokio::select! {
                read = reader.read_until(b'\n', &mut line) => {
                    if read.unwrap_or(0) == 0 {
                        return None;
                    }
                }
                _ = self.kick.changed() => {
                    reply!("421 4.4.2 localhost closing idle connection\r\n");
                    return None;
                }
            }
            let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            let (verb, argument) = line.split_once(' ').unwrap_or((&line, ""));
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" => {
                    reply!("250-localhost\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n");
                    if !self.state.no_pipelining.load(std::sync::atomic::Ordering::SeqCst) {
                        reply!("250-PIPELINING\r\n");
                    }
                    if self.acceptor.is_some() && !secured {
                        reply!("250-STARTTLS\r\n");
                    }
                    if auth_required {
                        reply!("250-AUTH PLAIN LOGIN\r\n");
                    }
                    reply!("250 SIZE 20971520\r\n");
                }
                "HELO" => reply!("250 localhost\r\n"),
                "STARTTLS" if !secured && self.acceptor.is_some() => {
                    reply!("220 2.0.0 ready to start TLS\r\n");
                    let stream = reader.into_inner().unsplit(write);
                    let acceptor = self.acceptor.clone().expect("checked above");
                    return acceptor.accept(stream).await.ok().map(|s| Box::new(s) as Box<dyn Io>);
                }
                "AUTH" => {
                    let expected = self.state.credentials.lock().unwrap().clone();
                    let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
                    let given = match mechanism.to_ascii_uppercase().as_str() {
                        "PLAIN" => {
                            let decoded = base64::engine::general_purpose::STANDARD.decode(initial).unwrap_or_default();
                            let parts: Vec<String> =
                                decoded.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
                            (parts.len() == 3).then(|| (parts[1].clone(), parts[2].clone()))
                        }
                        "LOGIN" => {
                            let user = login_prompt(&mut write, &mut reader, "VXNlcm5hbWU6").await;
                            let pass = login_prompt(&mut write, &mut reader, "UGFzc3dvcmQ6").await;
                            user.zip(pass)
                        }
                        _ => None,
                    };
                    if given.is_some() && given == expected {
                        authenticated = true;
                        reply!("235 2.7.0 authenticated\r\n");
                    } else {
                        reply!("535 5.7.8 authentication failed\r\n");
                    }
                }
                "MAIL" if auth_required && !authenticated => reply!("530 5.7.0 authentication required\r\n"),
                "MAIL" => match path(argument) {
                    Some(from) => {
                        // What the client wrote after MAIL before reading its reply.
                        let pipelined = !reader.buffer().is_empty();
                        envelope = Envelope { from: Some(from), pipelined, ..Envelope::default() };
                        reply!("250 2.1.0 ok\r\n");
                    }
                    None => reply!("501 5.5.4 syntax: MAIL FROM:<address>\r\n"),
                },
                "RCPT" => {
                    let Some(to) = path(argument) else {
                        reply!("501 5.5.4 syntax: RCPT TO:<address>\r\n");
                        continue;
                    };
                    if envelope.from.is_none() {
                        reply!("503 5.5.1 MAIL first\r\n");
                        continue;
                    }
                    let rule = self.state.rules.lock().unwrap().get(&to).copied();
                    match rule {
                        Some((code, Stage::Rcpt)) => {
                            reply!("{code} {} <{to}>: recipient refused by test rule\r\n", enhanced(code));
                        }
                        Some((code, Stage::Data)) => {
                            envelope.data_rule = Some(code);
                            envelope.to.push(to);
                            reply!("250 2.1.5 ok\r\n");
                        }
                        None => {
                            envelope.to.push(to);
                            reply!("250 2.1.5 ok\r\n");
                        }
                    }
                }
                "DATA" => {
                    if envelope.to.is_empty() {
                        reply!("503 5.5.1 RCPT first\r\n");
                        continue;
                    }
                    reply!("354 end data with <CR><LF>.<CR><LF>\r\n");
                    let mut data = Vec::new();
                    loop {
                        let mut line = Vec::new();
                        match reader.read_until(b'\n', &mut line).await {
                            Ok(0) | Err(_) => return None,
                            Ok(_) => {}
                        }
                        if line == b".\r\n" || line == b".\n" {
                            break;
                        }
                        // RFC 5321 §4.5.2: a leading dot was doubled by the client.
                        let line = if line.starts_with(b".") { &line[1..] } else { &line[..] };
                        data.extend_from_slice(line);
                    }
                    let envelope = std::mem::take(&mut envelope);
                    match envelope.data_rule {
                        Some(DROP_AFTER_DATA) => return None,
                        Some(code) => reply!("{code} {} message refused by test rule\r\n", enhanced(code)),
                        None => {
                            let delay = *self.state.delay.lock().unwrap();
                            let domain = envelope.to[0].rsplit('@').next().unwrap_or_default().to_lowercase();
                            {
                                let mut in_flight = self.state.in_flight.lock().unwrap();
                                let (now, most) = in_flight.entry(domain.clone()).or_default();
                                *now += 1;
                                *most = (*most).max(*now);
                            }
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            self.state.in_flight.lock().unwrap().get_mut(&domain).expect("counted above").0 -= 1;
                            let mail = ReceivedMail {
                                from: envelope.from.unwrap_or_default(),
                                to: envelope.to,
                                data,
                                secured,
                                pipelined: envelope.pipelined,
                            };
                            self.state.received.lock().unwrap().push(mail);
                            self.accepted.send_modify(|count| *count += 1);
                            reply!("250 2.0.0 ok: queued\r\n");
                        }
                    }
                }
                "RSET" => {
                    envelope = Envelope::default();
                    reply!("250 2.0.0 ok\r\n");
                }
                "NOOP" => reply!("250 2.0.0 ok\r\n"),
                "QUIT" => {
                    reply!("221 2.0.0 bye\r\n");
                    return None;
                }
                _ => reply!("502 5.5.2 command not recognised\r\n"),
            }
        }
    }
}

/// One AUTH LOGIN round: prompt (base64), read the base64 answer.
async fn login_prompt(
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
    prompt: &str,
) -> Option<String> {
    write.write_all(format!("334 {prompt}\r\n").as_bytes()).await.ok()?;
    let mut answer = String::new();
    reader.read_line(&mut answer).await.ok()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(answer.trim_end()).ok()?;
    String::from_utf8(bytes).ok()
}

/// A plausible enhanced status code (RFC 3463) for the reply text.
fn enhanced(code: u16) -> &'static str {
    match code {
        550 | 551 | 553 => "5.1.1",
        552 => "5.3.4",
        500..=599 => "5.7.1",
        _ => "4.2.0",
    }
}
