//! Python class `RegtestChain`: the local regtest chain and its Esplora HTTP server.
//! CPU work (mining, script checks) runs with the GIL released; the server runs on
//! pyo3-async-runtimes' tokio runtime. Errors raise `lsp_node.errors.ChainError`.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use bitcoin::{Address, Amount, Network, ScriptBuf};
use pyo3::prelude::*;
use regtest_chain::{ChainServer, RegtestChain};

pyo3::import_exception!(lsp_node.errors, ChainError);

fn to_py(e: regtest_chain::ChainError) -> PyErr {
    ChainError::new_err(e.to_string())
}

fn regtest_script(address: &str) -> PyResult<ScriptBuf> {
    let addr = Address::from_str(address.trim())
        .map_err(|e| ChainError::new_err(format!("invalid address {address:?}: {e}")))?
        .require_network(Network::Regtest)
        .map_err(|e| {
            ChainError::new_err(format!(
                "address {address:?} is not a regtest address (bcrt1.../m.../n.../2... required): {e}"
            ))
        })?;
    Ok(addr.script_pubkey())
}

type ServerSlot = Arc<Mutex<Option<ChainServer>>>;

fn lock_slot(slot: &ServerSlot) -> std::sync::MutexGuard<'_, Option<ChainServer>> {
    slot.lock().expect("regtest chain server slot mutex poisoned")
}

#[pyclass(frozen, name = "RegtestChain", module = "lsp_node._ldk")]
pub struct PyRegtestChain {
    chain: Arc<RegtestChain>,
    server: ServerSlot,
}

#[pymethods]
impl PyRegtestChain {
    /// Open (or create, mining 101 blocks to the faucet) the chain stored in SQLite at `db_path`.
    #[staticmethod]
    fn open(py: Python<'_>, db_path: String) -> PyResult<Self> {
        let chain = py.detach(|| RegtestChain::open(std::path::Path::new(&db_path))).map_err(to_py)?;
        Ok(PyRegtestChain { chain: Arc::new(chain), server: Arc::new(Mutex::new(None)) })
    }

    /// Serve the Esplora HTTP API; resolves to the base URL (e.g. "http://127.0.0.1:38111").
    #[pyo3(signature = (host="127.0.0.1".to_string(), port=0))]
    fn start_server<'py>(&self, py: Python<'py>, host: String, port: u16) -> PyResult<Bound<'py, PyAny>> {
        let ip = IpAddr::from_str(host.trim())
            .map_err(|e| ChainError::new_err(format!("invalid host {host:?} (want an IP address): {e}")))?;
        if let Some(running) = lock_slot(&self.server).as_ref() {
            return Err(ChainError::new_err(format!(
                "the regtest chain server is already running at {}",
                running.url()
            )));
        }
        let chain = Arc::clone(&self.chain);
        let slot = Arc::clone(&self.server);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let server = ChainServer::start(chain, SocketAddr::new(ip, port)).await.map_err(to_py)?;
            let url = server.url();
            // Another start_server call may have won the race; keep the first server.
            let lost = {
                let mut guard = lock_slot(&slot);
                match guard.as_ref() {
                    Some(running) => Some((server, running.url())),
                    None => {
                        *guard = Some(server);
                        None
                    }
                }
            };
            if let Some((server, running_url)) = lost {
                server.stop().await;
                return Err(ChainError::new_err(format!(
                    "the regtest chain server is already running at {running_url}"
                )));
            }
            Ok(url)
        })
    }

    /// Stop the HTTP server if it is running.
    fn stop_server<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let server = lock_slot(&self.server).take();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            if let Some(server) = server {
                server.stop().await;
            }
            Ok(())
        })
    }

    /// Base URL of the running server, or None.
    #[getter]
    fn server_url(&self) -> Option<String> {
        lock_slot(&self.server).as_ref().map(|s| s.url())
    }

    #[getter]
    fn height(&self) -> u32 {
        self.chain.height()
    }

    #[getter]
    fn tip_hash(&self) -> String {
        self.chain.tip_hash().to_string()
    }

    /// Mine `n` blocks (coinbase to `address`, or the faucet); returns the block hashes.
    #[pyo3(signature = (n, address=None))]
    fn mine_blocks(&self, py: Python<'_>, n: u32, address: Option<String>) -> PyResult<Vec<String>> {
        let script = address.as_deref().map(regtest_script).transpose()?;
        let hashes = py.detach(|| self.chain.mine_blocks(n, script.as_ref())).map_err(to_py)?;
        Ok(hashes.iter().map(|h| h.to_string()).collect())
    }

    /// Pay `amount_sat` from the faucet to `address` (into the mempool); returns the txid.
    fn fund_address(&self, py: Python<'_>, address: String, amount_sat: u64) -> PyResult<String> {
        let script = regtest_script(&address)?;
        py.detach(|| self.chain.fund(&script, Amount::from_sat(amount_sat))).map(|t| t.to_string()).map_err(to_py)
    }

    /// Mempool acceptance for a hex transaction; returns the txid.
    fn submit_transaction_hex(&self, py: Python<'_>, hex: String) -> PyResult<String> {
        py.detach(|| self.chain.submit_transaction_hex(&hex)).map(|t| t.to_string()).map_err(to_py)
    }

    fn mempool_txids(&self) -> Vec<String> {
        self.chain.mempool_txids().iter().map(|t| t.to_string()).collect()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRegtestChain>()
}
