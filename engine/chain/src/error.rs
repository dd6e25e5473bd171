//! Error type shared by the chain, its storage and the HTTP server.

/// bitcoind RPC code for "missing inputs / already spent" (`RPC_TRANSACTION_ERROR`).
pub const RPC_TRANSACTION_ERROR: i32 = -25;
/// bitcoind RPC code for policy, script, finality and conflict rejections (`RPC_TRANSACTION_REJECTED`).
pub const RPC_TRANSACTION_REJECTED: i32 = -26;
/// bitcoind RPC code for "transaction already in block chain" (`RPC_TRANSACTION_ALREADY_IN_CHAIN`).
pub const RPC_TRANSACTION_ALREADY_IN_CHAIN: i32 = -27;
/// bitcoind RPC code for "TX decode failed" (`RPC_DESERIALIZATION_ERROR`).
pub const RPC_DESERIALIZATION_ERROR: i32 = -22;

/// Everything that can go wrong in the regtest chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A transaction was refused by mempool acceptance. `code` follows bitcoind's RPC codes
    /// (-25 missing/spent inputs, -26 policy/script/non-final/conflict, -27 already in chain,
    /// -22 decode failed) and `reason` uses bitcoind's reject strings.
    #[error("transaction rejected by the regtest chain (code {code}): {reason}")]
    Rejected { code: i32, reason: String },
    /// The SQLite database could not be read or written.
    #[error("regtest chain storage error: {0}")]
    Storage(String),
    /// The caller asked for something impossible (bad address, not enough faucet funds, corrupt data...).
    #[error("invalid request to the regtest chain: {0}")]
    Invalid(String),
}

impl ChainError {
    pub(crate) fn rejected(code: i32, reason: impl Into<String>) -> Self {
        ChainError::Rejected { code, reason: reason.into() }
    }
    pub(crate) fn policy(reason: impl Into<String>) -> Self {
        Self::rejected(RPC_TRANSACTION_REJECTED, reason)
    }
}

impl From<rusqlite::Error> for ChainError {
    fn from(e: rusqlite::Error) -> Self {
        ChainError::Storage(e.to_string())
    }
}
