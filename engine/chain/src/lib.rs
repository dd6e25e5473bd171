//! A local Bitcoin regtest chain for tests and development.
//!
//! [`RegtestChain`] keeps real consensus-serialized blocks (regtest genesis, BIP34 heights,
//! witness commitments, real regtest proof of work) in SQLite, runs bitcoind-like mempool
//! acceptance with Bitcoin Core's script interpreter (`bitcoinconsensus`), owns a faucet key,
//! and [`ChainServer`] serves the Esplora HTTP subset used by LDK's
//! `lightning-transaction-sync`, `bdk_esplora` and `esplora-client`.

mod chain;
mod error;
mod server;
mod store;

pub use chain::{
    block_subsidy, default_fee_estimates, RegtestChain, COINBASE_MATURITY, HALVING_INTERVAL, MIN_RELAY_FEE_SAT_PER_KWU,
    REGTEST_BITS,
};
pub use error::{
    ChainError, RPC_DESERIALIZATION_ERROR, RPC_TRANSACTION_ALREADY_IN_CHAIN, RPC_TRANSACTION_ERROR,
    RPC_TRANSACTION_REJECTED,
};
pub use server::{router, ChainServer};
