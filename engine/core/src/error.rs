//! The engine's one error type; the PyO3 glue maps each variant to one Python exception class.

/// Every failure the engine reports. Messages are written for the operator or wallet developer
/// reading them: they say what went wrong and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node's configuration or data directory cannot be used as given.
    #[error("{0}")]
    Config(String),
    /// The SQLite store or a file in the data directory could not be read or written.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The Esplora chain source could not be reached or answered something unusable.
    #[error("chain source: {0}")]
    ChainSource(String),
    /// A peer is unknown, unreachable, or the connection attempt failed.
    #[error("{0}")]
    Peer(String),
    /// A channel operation was refused (unknown channel, bad parameters, peer refused...).
    #[error("{0}")]
    Channel(String),
    /// No usable channel to the node can carry the amount now; retrying later may succeed.
    #[error("{0}")]
    NoUsableChannel(String),
    /// The on-chain wallet or the channel does not hold enough to do what was asked.
    #[error("insufficient funds: {0}")]
    InsufficientFunds(String),
    /// A BOLT11 invoice could not be parsed, is for another network, or has expired.
    #[error("invalid invoice: {0}")]
    Invoice(String),
    /// A payment could not be started (no route, bad amount...).
    #[error("{0}")]
    Payment(String),
    /// The same invoice (payment hash) was already paid or is being paid.
    #[error("{0}")]
    DuplicatePayment(String),
    /// A Bitcoin address is malformed or belongs to another network.
    #[error("{0}")]
    Address(String),
    /// The on-chain wallet failed to build, sign or sync a transaction.
    #[error("wallet: {0}")]
    Wallet(String),
    /// An onion message could not be sent, forwarded or answered.
    #[error("{0}")]
    OnionMessage(String),
    /// The call needs a running node.
    #[error("the node is not running: call start() first")]
    NotRunning,
    /// An argument was out of range or malformed.
    #[error("{0}")]
    InvalidArgument(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(e.to_string())
    }
}
