//! A blocking Rust client for `vigil serve` (protocol v1,
//! `docs/PROTOCOL.md`), with pipelining: [`Client::send`] many requests,
//! then [`Client::recv`] their responses (each carries its request's id), or
//! [`Client::split`] into a sending and a receiving half for two threads.
//!
//! ```no_run
//! use vigil_client::{Client, Request, Response};
//! let mut client = Client::connect("unix:/run/vigil.sock").unwrap();
//! match client.call(&Request::Status).unwrap() {
//!     Response::Status(json) => println!("{json}"),
//!     other => eprintln!("unexpected {other:?}"),
//! }
//! ```

#![warn(missing_docs)]
use std::io::{self, BufReader, BufWriter, Write};
use vigil_protocol::transport::{Address, Stream};
pub use vigil_protocol::{
    BlockVerdict, DEFAULT_MAX_FRAME, ErrorCode, Failure, Outcome, RULE_NAMES, Request, Response, Rules, Signature,
};
use vigil_protocol::{DecodeError, FrameError, read_frame};

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The address is neither `unix:PATH` nor `tcp:HOST:PORT`; holds it.
    #[error("{0:?}: expected unix:PATH or tcp:HOST:PORT")]
    BadAddress(String),
    /// The connection could not be made.
    #[error("connecting to {address}: {source}")]
    Connect {
        /// The address, as given.
        address: String,
        /// The error.
        source: io::Error,
    },
    /// Writing to the socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A response frame could not be read (the stream is out of step).
    #[error("reading a response: {0}")]
    Frame(#[from] FrameError),
    /// The server closed the connection between frames.
    #[error("the server closed the connection")]
    Closed,
    /// A response body did not decode.
    #[error("response {id}: {source}")]
    Decode {
        /// The response's id.
        id: u64,
        /// Why it did not decode.
        source: DecodeError,
    },
    /// The server answered with an `error` response (or, for `auth`,
    /// anything but `authenticated`).
    #[error("the server refused: {} ({message})", code.name())]
    Refused {
        /// The response's error code.
        code: ErrorCode,
        /// The response's message.
        message: String,
    },
    /// A response came for another request than the one awaited.
    #[error("expected the response to request {want}, got {got}")]
    WrongId {
        /// The id awaited.
        want: u64,
        /// The id that came.
        got: u64,
    },
}

/// The sending half: numbers requests and writes them.
pub struct Sender {
    out: BufWriter<Stream>,
    next_id: u64,
}

impl Sender {
    /// Writes `request` (buffered: [`Sender::flush`] or `send` pushes it
    /// out) and returns its id.
    pub fn queue(&mut self, request: &Request) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.out.write_all(&request.encode(id))?;
        Ok(id)
    }

    /// Writes `request` and flushes; returns its id.
    pub fn send(&mut self, request: &Request) -> Result<u64, ClientError> {
        let id = self.queue(request)?;
        self.flush()?;
        Ok(id)
    }

    /// Pushes out the requests [`Sender::queue`] buffered.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        Ok(self.out.flush()?)
    }

    /// Writes raw bytes (for tests of the server's error handling).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.out.write_all(bytes)?;
        self.flush()
    }

    /// Tells the server no more requests will come (it still answers those
    /// sent).
    pub fn finish(mut self) -> Result<(), ClientError> {
        self.flush()?;
        Ok(self.out.get_ref().shutdown(std::net::Shutdown::Write)?)
    }
}

/// The receiving half.
pub struct Receiver {
    input: BufReader<Stream>,
    max_frame: usize,
}

impl Receiver {
    /// The next response and the id of the request it answers (0 for a
    /// connection-level error sent before closing).
    pub fn recv(&mut self) -> Result<(u64, Response), ClientError> {
        let frame = read_frame(&mut self.input, self.max_frame)?.ok_or(ClientError::Closed)?;
        let id = frame.header.id;
        let response =
            Response::decode(frame.header.kind, &frame.body).map_err(|source| ClientError::Decode { id, source })?;
        Ok((id, response))
    }
}

/// A connection to `vigil serve`.
pub struct Client {
    sender: Sender,
    receiver: Receiver,
}

impl Client {
    /// Connects to `unix:PATH` or `tcp:HOST:PORT`.
    pub fn connect(address: &str) -> Result<Client, ClientError> {
        let parsed: Address = address.parse().map_err(|_| ClientError::BadAddress(address.to_owned()))?;
        let stream =
            Stream::connect(&parsed).map_err(|source| ClientError::Connect { address: address.to_owned(), source })?;
        let read_half = stream.try_clone()?;
        Ok(Client {
            sender: Sender { out: BufWriter::new(stream), next_id: 1 },
            receiver: Receiver { input: BufReader::new(read_half), max_frame: DEFAULT_MAX_FRAME },
        })
    }

    /// Sends one request (flushed); returns its id.
    pub fn send(&mut self, request: &Request) -> Result<u64, ClientError> {
        self.sender.send(request)
    }

    /// The next response, with the id it answers.
    pub fn recv(&mut self) -> Result<(u64, Response), ClientError> {
        self.receiver.recv()
    }

    /// Connects and authenticates with `token` (a server started with
    /// `--token-file`: the first frame of a connection must be `auth`).
    pub fn connect_with_token(address: &str, token: &[u8]) -> Result<Client, ClientError> {
        let mut client = Client::connect(address)?;
        client.auth(token)?;
        Ok(client)
    }

    /// Sends an `auth` request and waits for its answer: `Ok` once the
    /// server accepted the token, [`ClientError::Refused`] otherwise (the
    /// server then closes the connection).
    pub fn auth(&mut self, token: &[u8]) -> Result<(), ClientError> {
        match self.call(&Request::Auth(token.to_vec()))? {
            Response::Authenticated => Ok(()),
            Response::Error { code, message } => Err(ClientError::Refused { code, message }),
            other => Err(ClientError::Refused { code: ErrorCode::Internal, message: format!("unexpected {other:?}") }),
        }
    }

    /// Sends `request` and waits for its response (nothing else may be in
    /// flight on this client).
    pub fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        let want = self.send(request)?;
        let (got, response) = self.recv()?;
        if got != want {
            return Err(ClientError::WrongId { want, got });
        }
        Ok(response)
    }

    /// The two halves, for a sending thread and a receiving thread.
    pub fn split(self) -> (Sender, Receiver) {
        (self.sender, self.receiver)
    }
}
