//! Python class `Node`: each call hands its work to the tokio runtime and returns an awaitable,
//! so the asyncio loop never waits on Rust I/O and the GIL is never held while Rust waits.
//! Structured results cross as the frozen classes of `types` and `events`.

use std::sync::Arc;

use lsp_engine::{verify_message as verify, Node, NodeConfig};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::events;
use crate::lsps::{JitChannel, Lsps1Order};
use crate::types::{
    Balance, Channel, Forward, ForwardTotals, HeldAsyncHtlc, HeldHop, InboundHtlc, InvoiceInfo, NodeOptions,
    OnionMessageStats, Payment, Peer, PendingIntercept, StaticInvoice,
};

#[pyclass(frozen, name = "Node", module = "lsp_node._ldk")]
pub struct PyNode {
    inner: Arc<Node>,
}

fn parse_network(s: &str) -> PyResult<bitcoin::Network> {
    s.parse::<bitcoin::Network>().map_err(|_| {
        crate::errors::ConfigError::new_err(format!(
            "unknown network '{s}' (use bitcoin, testnet, testnet4, signet or regtest)"
        ))
    })
}

macro_rules! spawn {
    ($py:expr, $node:expr, |$n:ident| $body:expr) => {{
        let $n = Arc::clone(&$node.inner);
        pyo3_async_runtimes::tokio::future_into_py($py, async move { $body })
    }};
}

#[pymethods]
impl PyNode {
    /// Build and start a node; resolves to a running Node. `options` defaults to
    /// `NodeOptions()`.
    #[staticmethod]
    #[pyo3(signature = (data_dir, network, esplora_url, options=None))]
    fn start<'py>(
        py: Python<'py>, data_dir: String, network: String, esplora_url: String,
        options: Option<PyRef<'py, NodeOptions>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut cfg = NodeConfig::new(data_dir, parse_network(&network)?, &esplora_url);
        if let Some(options) = options {
            cfg.options = (&*options).into();
        }
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let node = Node::start(cfg).await.map_err(to_py)?;
            Ok(PyNode { inner: Arc::new(node) })
        })
    }

    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.stop().await.map_err(to_py))
    }

    #[getter]
    fn is_running(&self) -> bool {
        self.inner.is_running()
    }

    #[getter]
    fn node_id(&self) -> String {
        self.inner.node_id()
    }

    #[getter]
    fn listen_addr(&self) -> String {
        self.inner.listen_addr().to_string()
    }

    #[getter]
    fn network(&self) -> String {
        self.inner.network().to_string()
    }

    #[getter]
    fn best_block_height(&self) -> u32 {
        self.inner.best_block_height()
    }

    /// Unix time (seconds) of the last successful chain sync; None before the first.
    #[getter]
    fn last_sync_at(&self) -> Option<f64> {
        self.inner.last_sync_at()
    }

    fn sync<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.sync().await.map_err(to_py))
    }

    fn new_address<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.new_address().map_err(to_py))
    }

    fn wallet_balance(&self, py: Python<'_>) -> Balance {
        py.detach(|| self.inner.wallet_balance()).into()
    }

    fn claimable_onchain_sat(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.inner.claimable_onchain_sat())
    }

    /// sat/vB per confirmation target (blocks), from the estimates each chain sync refreshes.
    fn fee_estimates(&self, py: Python<'_>, targets: Vec<u16>) -> Vec<(u16, f64)> {
        py.detach(|| self.inner.fee_estimates(&targets))
    }

    #[pyo3(signature = (address, amount_sat=None, force=false))]
    fn send_onchain<'py>(
        &self, py: Python<'py>, address: String, amount_sat: Option<u64>, force: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.send_onchain(&address, amount_sat, force).await.map_err(to_py))
    }

    fn connect<'py>(&self, py: Python<'py>, node_id: String, address: String) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.connect(&node_id, &address).await.map_err(to_py))
    }

    fn disconnect(&self, py: Python<'_>, node_id: String) -> PyResult<()> {
        py.detach(|| self.inner.disconnect(&node_id)).map_err(to_py)
    }

    fn list_peers(&self, py: Python<'_>) -> Vec<Peer> {
        py.detach(|| self.inner.list_peers()).into_iter().map(Peer::from).collect()
    }

    /// "host:port" addresses of the node's announcement in our gossip; [] if we have none.
    fn node_addresses(&self, py: Python<'_>, node_id: String) -> PyResult<Vec<String>> {
        py.detach(|| self.inner.node_addresses(&node_id)).map_err(to_py)
    }

    #[pyo3(signature = (node_id, amount_sat, push_msat=0, announce=false, force=false))]
    fn open_channel<'py>(
        &self, py: Python<'py>, node_id: String, amount_sat: u64, push_msat: u64, announce: bool, force: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.open_channel(&node_id, amount_sat, push_msat, announce, force).map_err(to_py))
    }

    fn list_channels(&self, py: Python<'_>) -> Vec<Channel> {
        py.detach(|| self.inner.list_channels()).into_iter().map(Channel::from).collect()
    }

    fn close_channel<'py>(&self, py: Python<'py>, channel_id: String) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.close_channel(&channel_id).map_err(to_py))
    }

    #[pyo3(signature = (channel_id, reason="closed by the operator".to_string()))]
    fn force_close_channel<'py>(
        &self, py: Python<'py>, channel_id: String, reason: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.force_close_channel(&channel_id, &reason).map_err(to_py))
    }

    #[pyo3(signature = (amount_msat, description, expiry_secs=3600))]
    fn create_invoice<'py>(
        &self, py: Python<'py>, amount_msat: Option<u64>, description: String, expiry_secs: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.create_invoice(amount_msat, &description, expiry_secs).map_err(to_py))
    }

    fn decode_invoice(&self, py: Python<'_>, invoice: String) -> PyResult<InvoiceInfo> {
        py.detach(|| self.inner.decode_invoice(&invoice)).map(InvoiceInfo::from).map_err(to_py)
    }

    #[pyo3(signature = (invoice, amount_msat=None, max_fee_msat=None))]
    fn pay_invoice<'py>(
        &self, py: Python<'py>, invoice: String, amount_msat: Option<u64>, max_fee_msat: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.pay_invoice(&invoice, amount_msat, max_fee_msat).map_err(to_py))
    }

    fn keysend<'py>(&self, py: Python<'py>, node_id: String, amount_msat: u64) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.keysend(&node_id, amount_msat).map_err(to_py))
    }

    /// Resolves to every recorded payment, oldest first.
    fn list_payments<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| {
            let v = n.list_payments().map_err(to_py)?;
            Ok(v.into_iter().map(Payment::from).collect::<Vec<_>>())
        })
    }

    /// Resolves to one page of payments, newest first: only `direction` (inbound, outbound) and
    /// `status` (pending, succeeded, failed) if given; `invoices_only`: invoices this node made.
    #[pyo3(signature = (direction=None, status=None, invoices_only=false, limit=50, offset=0))]
    fn payments_page<'py>(
        &self, py: Python<'py>, direction: Option<String>, status: Option<String>, invoices_only: bool, limit: u32,
        offset: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| {
            let v = n
                .payments_page(direction.as_deref(), status.as_deref(), invoices_only, limit, offset)
                .map_err(to_py)?;
            Ok(v.into_iter().map(Payment::from).collect::<Vec<_>>())
        })
    }

    /// Resolves to (direction, status, count) for each pair that has payments, sorted: counted
    /// by the engine's database, no record is read.
    fn payment_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.payment_counts().map_err(to_py))
    }

    /// Resolves to one page of the forwarding history, newest first.
    #[pyo3(signature = (limit=50, offset=0))]
    fn list_forwards<'py>(&self, py: Python<'py>, limit: u32, offset: u64) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| {
            let v = n.list_forwards(limit, offset).map_err(to_py)?;
            Ok(v.into_iter().map(Forward::from).collect::<Vec<_>>())
        })
    }

    /// Resolves to one page of the JIT channels sold over LSPS2, newest first.
    #[pyo3(signature = (limit=50, offset=0))]
    fn lsps2_channels<'py>(&self, py: Python<'py>, limit: u32, offset: u32) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| {
            let v = n.lsps2_channels(limit, offset).map_err(to_py)?;
            Ok(v.into_iter().map(JitChannel::from).collect::<Vec<_>>())
        })
    }

    /// Resolves to one page of the LSPS1 orders, newest first.
    #[pyo3(signature = (limit=50, offset=0))]
    fn lsps1_orders<'py>(&self, py: Python<'py>, limit: u32, offset: u32) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| {
            let v = n.lsps1_orders(limit, offset).map_err(to_py)?;
            Ok(v.into_iter().map(Lsps1Order::from).collect::<Vec<_>>())
        })
    }

    /// Whether the LSPS1 service runs (`[lsps1] enabled`).
    #[getter]
    fn lsps1_enabled(&self) -> bool {
        self.inner.lsps1_enabled()
    }

    /// Whether the LSPS2 service runs (`[lsps2] enabled`).
    #[getter]
    fn lsps2_enabled(&self) -> bool {
        self.inner.lsps2_enabled()
    }

    /// Whether the LSPS5 service runs (`[lsps5] enabled`).
    #[getter]
    fn lsps5_enabled(&self) -> bool {
        self.inner.lsps5_enabled()
    }

    /// Have the LSPS5 service sign `method` (`lsps5.payment_incoming`, `lsps5.expiry_soon` with
    /// `timeout`, `lsps5.liquidity_management_request`, `lsps5.onion_message_incoming`) for
    /// every webhook of `client`; resolves to "queued" (each comes as an `Lsps5Notification`
    /// event; none if the client has no webhook) or "cooldown" (lightning-liquidity's 60 s per
    /// client). Awaitable: it takes lightning-liquidity's per-peer lock and signs once per
    /// webhook, off the asyncio thread and without the GIL.
    #[pyo3(signature = (client, method, timeout=None))]
    fn lsps5_notify<'py>(
        &self, py: Python<'py>, client: String, method: String, timeout: Option<u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| Ok(match n.lsps5_notify(&client, &method, timeout).map_err(to_py)? {
            lsp_engine::Lsps5NotifyOutcome::Queued => "queued",
            lsp_engine::Lsps5NotifyOutcome::Cooldown => "cooldown",
        }))
    }

    /// LSPS5 client (`lsps5_client` option): register `url` for `app_name` at a connected LSP.
    /// Returns the request id; the answer comes as an `Lsps5WebhookReply` event.
    fn lsps5_set_webhook(&self, lsp_node_id: &str, app_name: &str, url: &str) -> PyResult<String> {
        self.inner.lsps5_set_webhook(lsp_node_id, app_name, url).map_err(to_py)
    }

    /// Resolves to the totals of the forwarding history.
    fn forward_totals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| Ok(ForwardTotals::from(n.forward_totals().map_err(to_py)?)))
    }

    /// Blinded paths to this node for the async-payment recipient `node_id` (hex of LDK's
    /// encoding of the path list, what ldk-node's `set_paths_to_static_invoice_server` takes).
    #[pyo3(signature = (node_id, valid_days=365))]
    fn async_recipient_paths(&self, py: Python<'_>, node_id: String, valid_days: u32) -> PyResult<String> {
        let paths = py.detach(|| self.inner.async_recipient_paths(&node_id, valid_days)).map_err(to_py)?;
        Ok(paths.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Resolves to the static invoices kept for offline recipients, newest first.
    fn static_invoices<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| Ok(n
            .static_invoices()
            .map_err(to_py)?
            .into_iter()
            .map(StaticInvoice::from)
            .collect::<Vec<_>>()))
    }

    /// The HTLCs LDK holds now for BOLT async payments (`hold_htlc`), per inbound channel.
    fn held_async_htlcs(&self, py: Python<'_>) -> Vec<HeldAsyncHtlc> {
        py.detach(|| self.inner.held_async_htlcs()).into_iter().map(HeldAsyncHtlc::from).collect()
    }

    /// Resolves to the payment with this id, or None.
    fn payment<'py>(&self, py: Python<'py>, payment_id: String) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| Ok(n.payment(&payment_id).map_err(to_py)?.map(Payment::from)))
    }

    fn get_intercept_scid(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.inner.get_intercept_scid())
    }

    /// Forward an intercepted HTLC to `next_node_id` over a channel the engine picks; raises
    /// NoUsableChannelError if no channel to that node can carry `amount_msat` now.
    fn forward_intercepted_htlc<'py>(
        &self, py: Python<'py>, intercept_id: String, next_node_id: String, amount_msat: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.forward_intercepted_htlc(&intercept_id, &next_node_id, amount_msat).map_err(to_py))
    }

    fn fail_intercepted_htlc<'py>(&self, py: Python<'py>, intercept_id: String) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.fail_intercepted_htlc(&intercept_id).map_err(to_py))
    }

    /// The distinct nodes right after the LSP on the paths the router would take now to pay
    /// `invoice` through `lsp_node_id` (the next hops to ask the LSP to hold for).
    fn held_route_next_hops<'py>(
        &self, py: Python<'py>, invoice: String, lsp_node_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.held_route_next_hops(&invoice, &lsp_node_id).map_err(to_py))
    }

    /// Pay an invoice through the hold `lsp_node_id` armed, one intercept SCID per next hop.
    #[pyo3(signature = (invoice, lsp_node_id, hops, extra_final_cltv, max_fee_msat=None))]
    fn pay_invoice_held<'py>(
        &self, py: Python<'py>, invoice: String, lsp_node_id: String, hops: Vec<PyRef<'py, HeldHop>>,
        extra_final_cltv: u32, max_fee_msat: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let hops: Vec<lsp_engine::HeldHop> = hops.iter().map(|h| lsp_engine::HeldHop::from(&**h)).collect();
        spawn!(py, self, |n| n
            .pay_invoice_held(&invoice, &lsp_node_id, &hops, extra_final_cltv, max_fee_msat)
            .map_err(to_py))
    }

    fn pending_inbound_htlcs(&self, py: Python<'_>) -> Vec<InboundHtlc> {
        py.detach(|| self.inner.pending_inbound_htlcs()).into_iter().map(InboundHtlc::from).collect()
    }

    /// Whether LDK still holds intercepted HTLC `intercept_id`: its inbound amount, else None.
    fn intercept_pending_amount(&self, py: Python<'_>, intercept_id: String) -> PyResult<Option<u64>> {
        py.detach(|| self.inner.intercept_pending_amount(&intercept_id)).map_err(to_py)
    }

    /// The intercepted HTLCs LDK holds now (for start-up reconciliation).
    fn pending_intercepts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| Ok(n
            .pending_intercepts()
            .map_err(to_py)?
            .into_iter()
            .map(PendingIntercept::from)
            .collect::<Vec<_>>()))
    }

    /// Counters of the onion-message rate limit and the event queue's depth per lane.
    fn onion_message_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| Ok(OnionMessageStats::from(n.onion_message_stats().map_err(to_py)?)))
    }

    #[pyo3(signature = (node_id=None))]
    fn set_message_relay(&self, node_id: Option<String>) -> PyResult<()> {
        self.inner.set_message_relay(node_id.as_deref()).map_err(to_py)
    }

    #[pyo3(signature = (tlv_type, payload, to_node=None, to_path=None, reply_context=None))]
    fn send_onion_message<'py>(
        &self, py: Python<'py>, tlv_type: u64, payload: Vec<u8>, to_node: Option<String>, to_path: Option<String>,
        reply_context: Option<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n
            .send_onion_message(tlv_type, payload, to_node.as_deref(), to_path.as_deref(), reply_context)
            .map_err(to_py))
    }

    fn reply_onion_message<'py>(
        &self, py: Python<'py>, responder: String, tlv_type: u64, payload: Vec<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.reply_onion_message(&responder, tlv_type, payload).map_err(to_py))
    }

    #[pyo3(signature = (context, intermediate_nodes=Vec::new()))]
    fn create_blinded_path(
        &self, py: Python<'_>, context: Vec<u8>, intermediate_nodes: Vec<String>,
    ) -> PyResult<String> {
        py.detach(|| self.inner.create_blinded_path(context, &intermediate_nodes)).map_err(to_py)
    }

    fn forward_onion_message<'py>(
        &self, py: Python<'py>, message: String, peer_node_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.forward_onion_message(&message, &peer_node_id).map_err(to_py))
    }

    fn sign_message(&self, py: Python<'_>, message: Vec<u8>) -> String {
        py.detach(|| self.inner.sign_message(&message))
    }

    /// Resolves to the oldest unacknowledged event (one of the event classes).
    fn next_event<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| {
            let e = n.next_event().await.map_err(to_py)?;
            Python::attach(|py| events::to_py(py, e))
        })
    }

    /// The oldest unacknowledged event, or None, without waiting.
    fn poll_event(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let e = py.detach(|| self.inner.poll_event()).map_err(to_py)?;
        e.map(|e| events::to_py(py, e)).transpose()
    }

    fn event_handled<'py>(&self, py: Python<'py>, event_id: i64) -> PyResult<Bound<'py, PyAny>> {
        spawn!(py, self, |n| n.event_handled(event_id).map_err(to_py))
    }

    /// Up to `max` buffered log lines as (level, module, message), oldest first.
    #[pyo3(signature = (max=1000))]
    fn drain_logs(&self, py: Python<'_>, max: usize) -> Vec<(String, String, String)> {
        py.detach(|| self.inner.drain_logs(max))
            .into_iter()
            .map(|l| (l.level.to_string(), l.module, l.message))
            .collect()
    }
}

/// Whether an LSPS5 webhook POST is signed by `lsp_node_id` (bLIP-55): the `x-lsps5-timestamp`
/// and `x-lsps5-signature` headers and the exact body.
#[pyfunction]
pub fn lsps5_verify(lsp_node_id: &str, timestamp: &str, signature: &str, body: &str) -> PyResult<bool> {
    lsp_engine::lsps5_verify(lsp_node_id, timestamp, signature, body).map_err(to_py)
}

/// Check a node-key signature in the lightning `signmessage` format.
#[pyfunction]
pub fn verify_message(message: Vec<u8>, signature: String, node_id: String) -> PyResult<bool> {
    verify(&message, &signature, &node_id).map_err(to_py)
}
