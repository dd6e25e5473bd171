//! The data classes Python sees (`Balance`, `Channel`, ... and the node options): frozen,
//! typed, converted once from the engine's structs. Ids and hashes stay lowercase hex strings.

use lsp_engine::{ChannelInfo, PaymentRecord, PeerInfo, WalletBalance};
use pyo3::prelude::*;

use crate::lsps::{Lsps1Options, Lsps2Options};

/// Declare a frozen pyclass with public fields, a constructor, `__match_args__` (so `match`
/// statements work), a dataclass-like `__repr__` and, for events, a `kind` class attribute.
/// Fields listed under `added { .. }` (Option types) come last and default to None in the
/// constructor, so Python code written before they existed keeps working.
macro_rules! record {
    ($(#[$meta:meta])* $name:ident $(kind = $kind:literal)? { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }
     $(added { $($ofield:ident : $oty:ty),* $(,)? })?) => {
        $(#[$meta])*
        #[pyclass(frozen, get_all, eq, module = "lsp_node._ldk")]
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            $($(pub $ofield: $oty,)*)?
        }

        #[pymethods]
        impl $name {
            #[new]
            #[pyo3(signature = ($($field,)* $($($ofield = None,)*)?))]
            #[allow(clippy::too_many_arguments)]
            fn new($($field: $ty,)* $($($ofield: $oty,)*)?) -> Self {
                Self { $($field,)* $($($ofield,)*)? }
            }

            $(
                /// The event's name, as the engine queues it (for logs and dispatch tables).
                #[classattr]
                fn kind() -> &'static str {
                    $kind
                }
            )?

            #[classattr]
            fn __match_args__(py: Python<'_>) -> PyResult<Py<pyo3::types::PyTuple>> {
                Ok(pyo3::types::PyTuple::new(py, [$(stringify!($field),)* $($(stringify!($ofield),)*)?])?.unbind())
            }

            fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                #[allow(unused_imports)]
                use pyo3::IntoPyObjectExt;
                #[allow(unused_variables)]
                let (py, this) = (slf.py(), slf.get());
                let fields: Vec<String> = vec![
                    $(format!("{}={}", stringify!($field), this.$field.clone().into_bound_py_any(py)?.repr()?),)*
                    $($(format!("{}={}", stringify!($ofield), this.$ofield.clone().into_bound_py_any(py)?.repr()?),)*)?
                ];
                Ok(format!("{}({})", stringify!($name), fields.join(", ")))
            }
        }
    };
}
pub(crate) use record;

record!(
    /// The on-chain wallet's balance in satoshis.
    Balance {
        confirmed_sat: u64,
        trusted_pending_sat: u64,
        untrusted_pending_sat: u64,
        immature_sat: u64,
        total_sat: u64,
        spendable_sat: u64,
    }
);

impl From<WalletBalance> for Balance {
    fn from(b: WalletBalance) -> Self {
        Self {
            confirmed_sat: b.confirmed_sat,
            trusted_pending_sat: b.trusted_pending_sat,
            untrusted_pending_sat: b.untrusted_pending_sat,
            immature_sat: b.immature_sat,
            total_sat: b.total_sat,
            spendable_sat: b.spendable_sat,
        }
    }
}

record!(
    /// A connected peer.
    Peer { node_id: String, address: Option<String>, inbound: bool }
);

impl From<PeerInfo> for Peer {
    fn from(p: PeerInfo) -> Self {
        Self { node_id: p.node_id, address: p.address, inbound: p.inbound }
    }
}

record!(
    /// A channel as the channel manager lists it; `state` is pending, ready, usable or closing.
    Channel {
        channel_id: String,
        user_channel_id: String,
        counterparty_node_id: String,
        short_channel_id: Option<u64>,
        funding_txo: Option<String>,
        capacity_sat: u64,
        outbound_capacity_msat: u64,
        inbound_capacity_msat: u64,
        next_outbound_htlc_limit_msat: u64,
        confirmations: Option<u32>,
        is_outbound: bool,
        is_ready: bool,
        is_usable: bool,
        is_announced: bool,
        pending_htlcs: usize,
        state: String,
    }
);

impl From<ChannelInfo> for Channel {
    fn from(c: ChannelInfo) -> Self {
        Self {
            channel_id: c.channel_id,
            user_channel_id: c.user_channel_id,
            counterparty_node_id: c.counterparty_node_id,
            short_channel_id: c.short_channel_id,
            funding_txo: c.funding_txo,
            capacity_sat: c.capacity_sat,
            outbound_capacity_msat: c.outbound_capacity_msat,
            inbound_capacity_msat: c.inbound_capacity_msat,
            next_outbound_htlc_limit_msat: c.next_outbound_htlc_limit_msat,
            confirmations: c.confirmations,
            is_outbound: c.is_outbound,
            is_ready: c.is_ready,
            is_usable: c.is_usable,
            is_announced: c.is_announced,
            pending_htlcs: c.pending_htlcs,
            state: c.state,
        }
    }
}

record!(
    /// A decoded BOLT11 invoice.
    InvoiceInfo {
        payment_hash: String,
        amount_msat: Option<u64>,
        description: Option<String>,
        payee_node_id: String,
        network: String,
        timestamp: u64,
        expiry_secs: u64,
        is_expired: bool,
        min_final_cltv_expiry_delta: u64,
        route_hints: usize,
        route_hint_sources: Vec<String>,
    }
);

impl From<lsp_engine::InvoiceInfo> for InvoiceInfo {
    fn from(i: lsp_engine::InvoiceInfo) -> Self {
        Self {
            payment_hash: i.payment_hash,
            amount_msat: i.amount_msat,
            description: i.description,
            payee_node_id: i.payee_node_id,
            network: i.network,
            timestamp: i.timestamp,
            expiry_secs: i.expiry_secs,
            is_expired: i.is_expired,
            min_final_cltv_expiry_delta: i.min_final_cltv_expiry_delta,
            route_hints: i.route_hints,
            route_hint_sources: i.route_hint_sources,
        }
    }
}

record!(
    /// An HTLC offered to this node and not settled yet.
    InboundHtlc {
        channel_id: String,
        counterparty_node_id: String,
        payment_hash: String,
        amount_msat: u64,
        cltv_expiry: u32,
    }
);

impl From<lsp_engine::InboundHtlc> for InboundHtlc {
    fn from(h: lsp_engine::InboundHtlc) -> Self {
        Self {
            channel_id: h.channel_id,
            counterparty_node_id: h.counterparty_node_id,
            payment_hash: h.payment_hash,
            amount_msat: h.amount_msat,
            cltv_expiry: h.cltv_expiry,
        }
    }
}

record!(
    /// An intercepted HTLC that LDK still holds, as the engine recorded it when LDK reported
    /// it; `state` is pending, or forwarded / failed if that was requested before (LDK holding
    /// it again means the request was lost, e.g. to a crash before LDK persisted it).
    PendingIntercept {
        intercept_id: String,
        requested_next_hop_scid: u64,
        payment_hash: String,
        prev_channel_id: Option<String>,
        prev_node_id: Option<String>,
        inbound_amount_msat: u64,
        expected_outbound_amount_msat: u64,
        inbound_cltv_expiry: Option<u32>,
        state: String,
    }
);

impl From<lsp_engine::InterceptRecord> for PendingIntercept {
    fn from(r: lsp_engine::InterceptRecord) -> Self {
        Self {
            intercept_id: r.intercept_id,
            requested_next_hop_scid: r.requested_next_hop_scid,
            payment_hash: r.payment_hash,
            prev_channel_id: r.prev_channel_id,
            prev_node_id: r.prev_node_id,
            inbound_amount_msat: r.inbound_amount_msat,
            expected_outbound_amount_msat: r.expected_outbound_amount_msat,
            inbound_cltv_expiry: r.inbound_cltv_expiry,
            state: r.state,
        }
    }
}

record!(
    /// What the onion-message front door and the event queue have done since start:
    /// messages accepted or dropped by the per-peer rate limit, forwarded, intercepted for an
    /// offline node, undeliverable; message events refused by a full queue; queue depth now.
    OnionMessageStats {
        accepted: u64,
        rate_limited: u64,
        forwarded: u64,
        intercepted: u64,
        undeliverable: u64,
        queue_refused: u64,
        queued_messages: u64,
        queued_other: u64,
    }
);

impl From<lsp_engine::OnionMessageStats> for OnionMessageStats {
    fn from(s: lsp_engine::OnionMessageStats) -> Self {
        Self {
            accepted: s.accepted,
            rate_limited: s.rate_limited,
            forwarded: s.forwarded,
            intercepted: s.intercepted,
            undeliverable: s.undeliverable,
            queue_refused: s.queue_refused,
            queued_messages: s.queued_messages,
            queued_other: s.queued_other,
        }
    }
}

record!(
    /// A payment as the engine records it; `direction` is inbound or outbound, `status`
    /// pending, succeeded or failed.
    Payment {
        payment_id: String,
        payment_hash: String,
        direction: String,
        status: String,
        amount_msat: Option<u64>,
        fee_msat: Option<u64>,
        preimage: Option<String>,
        bolt11: Option<String>,
        failure: Option<String>,
        created_at: u64,
        updated_at: u64,
    }
);

impl From<PaymentRecord> for Payment {
    fn from(p: PaymentRecord) -> Self {
        Self {
            payment_id: p.payment_id,
            payment_hash: p.payment_hash,
            direction: p.direction,
            status: p.status,
            amount_msat: p.amount_msat,
            fee_msat: p.fee_msat,
            preimage: p.preimage,
            bolt11: p.bolt11,
            failure: p.failure,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

record!(
    /// A payment this node forwarded (its forwarding history, newest first); `id` is its place
    /// in the history, `created_at` when it was booked (unix seconds).
    Forward {
        id: i64,
        prev_channel_id: Option<String>,
        next_channel_id: Option<String>,
        prev_node_id: Option<String>,
        next_node_id: Option<String>,
        fee_earned_msat: Option<u64>,
        outbound_amount_msat: Option<u64>,
        claim_from_onchain_tx: bool,
        created_at: u64,
    }
);

impl From<lsp_engine::ForwardRecord> for Forward {
    fn from(f: lsp_engine::ForwardRecord) -> Self {
        Self {
            id: f.id,
            prev_channel_id: f.prev_channel_id,
            next_channel_id: f.next_channel_id,
            prev_node_id: f.prev_node_id,
            next_node_id: f.next_node_id,
            fee_earned_msat: f.fee_earned_msat,
            outbound_amount_msat: f.outbound_amount_msat,
            claim_from_onchain_tx: f.claim_from_onchain_tx,
            created_at: f.created_at,
        }
    }
}

record!(
    /// Totals over the forwarding history: forwards, fees earned and amounts sent on (msat).
    ForwardTotals {
        count: u64,
        fees_msat: u64,
        amount_msat: u64,
    }
);

impl From<lsp_engine::ForwardTotals> for ForwardTotals {
    fn from(t: lsp_engine::ForwardTotals) -> Self {
        Self { count: t.count, fees_msat: t.fees_msat, amount_msat: t.amount_msat }
    }
}

record!(
    /// A static invoice kept for an offline async-payment recipient: whose (`recipient`, its
    /// node id), which of its slots, the invoice's size and when it was last replaced.
    StaticInvoice {
        recipient: String,
        slot: u16,
        invoice_bytes: u64,
        updated_at: u64,
    }
);

impl From<lsp_engine::StaticInvoiceRecord> for StaticInvoice {
    fn from(r: lsp_engine::StaticInvoiceRecord) -> Self {
        Self {
            recipient: lsp_engine::recipient_label(&r.recipient_id),
            slot: r.slot,
            invoice_bytes: r.invoice_bytes,
            updated_at: r.updated_at,
        }
    }
}

record!(
    /// An HTLC held for a BOLT async payment until its recipient releases it: its intercept id
    /// (what fail_intercepted_htlc takes), the payer's channel and node, and the height at
    /// which LDK would fail it back itself.
    HeldAsyncHtlc {
        intercept_id: String,
        channel_id: String,
        counterparty_node_id: String,
        htlc_id: u64,
        payment_hash: String,
        amount_msat: u64,
        cltv_expiry: u32,
        ldk_fail_back_height: u32,
    }
);

impl From<lsp_engine::HeldAsyncHtlc> for HeldAsyncHtlc {
    fn from(h: lsp_engine::HeldAsyncHtlc) -> Self {
        Self {
            intercept_id: h.intercept_id,
            channel_id: h.channel_id,
            counterparty_node_id: h.counterparty_node_id,
            htlc_id: h.htlc_id,
            payment_hash: h.payment_hash,
            amount_msat: h.amount_msat,
            cltv_expiry: h.cltv_expiry,
            ldk_fail_back_height: h.ldk_fail_back_height,
        }
    }
}

record!(
    /// One next hop of a held payment (see SPEC.md): the node right after the payer's LSP on a
    /// path, the intercept SCID the LSP assigned to it, and the LSP's fee and CLTV delta there.
    HeldHop {
        next_node_id: String,
        short_channel_id: u64,
        fee_base_msat: u32,
        fee_proportional_millionths: u32,
        cltv_expiry_delta: u16,
    }
);

impl From<&HeldHop> for lsp_engine::HeldHop {
    fn from(h: &HeldHop) -> Self {
        Self {
            next_node_id: h.next_node_id.clone(),
            short_channel_id: h.short_channel_id,
            fee_base_msat: h.fee_base_msat,
            fee_proportional_millionths: h.fee_proportional_millionths,
            cltv_expiry_delta: h.cltv_expiry_delta,
        }
    }
}

/// A node's tunable options. Every default comes from `lsp_engine::NodeOptions::default()`,
/// the one place they are set; `NodeOptions()` in Python is that default.
#[pyclass(frozen, get_all, eq, module = "lsp_node._ldk")]
#[derive(Clone, Debug, PartialEq)]
pub struct NodeOptions {
    pub listen_addr: String,
    pub sync_interval_secs: u64,
    pub log_level: String,
    pub accept_intercept_htlcs: bool,
    pub to_self_delay: u16,
    pub min_funding_confirmations: u32,
    pub forward_immediately: bool,
    pub onion_message_rate_per_sec: u32,
    pub onion_message_burst: u32,
    pub max_queued_onion_messages: u32,
    pub max_intercepted_per_peer: u32,
    pub min_inbound_channel_sat: u64,
    pub log_max_bytes: u64,
    pub log_keep_files: u32,
    pub announce_addresses: Vec<String>,
    pub async_payments_server: bool,
    pub lsps2: Option<Lsps2Options>,
    pub lsps1: Option<Lsps1Options>,
    pub lsps5_max_webhooks: Option<u32>,
    pub lsps5_client: bool,
    pub lsps5_wait_for_client_secs: u32,
}

fn default() -> lsp_engine::NodeOptions {
    lsp_engine::NodeOptions::default()
}

#[pymethods]
impl NodeOptions {
    #[new]
    #[pyo3(signature = (
        *,
        listen_addr = default().listen_addr,
        sync_interval_secs = default().sync_interval_secs,
        log_level = default().log_level,
        accept_intercept_htlcs = default().accept_intercept_htlcs,
        to_self_delay = default().to_self_delay,
        min_funding_confirmations = default().min_funding_confirmations,
        forward_immediately = default().forward_immediately,
        onion_message_rate_per_sec = default().onion_message_rate_per_sec,
        onion_message_burst = default().onion_message_burst,
        max_queued_onion_messages = default().max_queued_onion_messages,
        max_intercepted_per_peer = default().max_intercepted_per_peer,
        min_inbound_channel_sat = default().min_inbound_channel_sat,
        log_max_bytes = default().log_max_bytes,
        log_keep_files = default().log_keep_files,
        announce_addresses = default().announce_addresses,
        async_payments_server = default().async_payments_server,
        lsps2 = None,
        lsps1 = None,
        lsps5_max_webhooks = None,
        lsps5_client = false,
        lsps5_wait_for_client_secs = 0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        listen_addr: String, sync_interval_secs: u64, log_level: String, accept_intercept_htlcs: bool,
        to_self_delay: u16, min_funding_confirmations: u32, forward_immediately: bool, onion_message_rate_per_sec: u32,
        onion_message_burst: u32, max_queued_onion_messages: u32, max_intercepted_per_peer: u32,
        min_inbound_channel_sat: u64, log_max_bytes: u64, log_keep_files: u32, announce_addresses: Vec<String>,
        async_payments_server: bool, lsps2: Option<Lsps2Options>, lsps1: Option<Lsps1Options>,
        lsps5_max_webhooks: Option<u32>, lsps5_client: bool, lsps5_wait_for_client_secs: u32,
    ) -> Self {
        Self {
            listen_addr,
            sync_interval_secs,
            log_level,
            accept_intercept_htlcs,
            to_self_delay,
            min_funding_confirmations,
            forward_immediately,
            onion_message_rate_per_sec,
            onion_message_burst,
            max_queued_onion_messages,
            max_intercepted_per_peer,
            min_inbound_channel_sat,
            log_max_bytes,
            log_keep_files,
            announce_addresses,
            async_payments_server,
            lsps2,
            lsps1,
            lsps5_max_webhooks,
            lsps5_client,
            lsps5_wait_for_client_secs,
        }
    }

    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Py<pyo3::types::PyTuple>> {
        let names = [
            "listen_addr",
            "sync_interval_secs",
            "log_level",
            "accept_intercept_htlcs",
            "to_self_delay",
            "min_funding_confirmations",
            "forward_immediately",
            "onion_message_rate_per_sec",
            "onion_message_burst",
            "max_queued_onion_messages",
            "max_intercepted_per_peer",
            "min_inbound_channel_sat",
            "log_max_bytes",
            "log_keep_files",
            "announce_addresses",
            "async_payments_server",
            "lsps2",
            "lsps1",
            "lsps5_max_webhooks",
            "lsps5_client",
            "lsps5_wait_for_client_secs",
        ];
        Ok(pyo3::types::PyTuple::new(py, names)?.unbind())
    }

    fn __repr__(&self) -> String {
        format!("{self:?}")
    }
}

impl From<&NodeOptions> for lsp_engine::NodeOptions {
    fn from(o: &NodeOptions) -> Self {
        Self {
            listen_addr: o.listen_addr.clone(),
            sync_interval_secs: o.sync_interval_secs,
            log_level: o.log_level.clone(),
            accept_intercept_htlcs: o.accept_intercept_htlcs,
            to_self_delay: o.to_self_delay,
            min_funding_confirmations: o.min_funding_confirmations,
            forward_immediately: o.forward_immediately,
            onion_message_rate_per_sec: o.onion_message_rate_per_sec,
            onion_message_burst: o.onion_message_burst,
            max_queued_onion_messages: o.max_queued_onion_messages,
            max_intercepted_per_peer: o.max_intercepted_per_peer,
            min_inbound_channel_sat: o.min_inbound_channel_sat,
            log_max_bytes: o.log_max_bytes,
            log_keep_files: o.log_keep_files,
            announce_addresses: o.announce_addresses.clone(),
            async_payments_server: o.async_payments_server,
            lsps2: o.lsps2.as_ref().map(lsp_engine::Lsps2Options::from),
            lsps1: o.lsps1.as_ref().map(lsp_engine::Lsps1Options::from),
            lsps5_max_webhooks: o.lsps5_max_webhooks,
            lsps5_client: o.lsps5_client,
            lsps5_wait_for_client_secs: o.lsps5_wait_for_client_secs,
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Balance>()?;
    m.add_class::<Peer>()?;
    m.add_class::<Channel>()?;
    m.add_class::<InvoiceInfo>()?;
    m.add_class::<InboundHtlc>()?;
    m.add_class::<Payment>()?;
    m.add_class::<Forward>()?;
    m.add_class::<ForwardTotals>()?;
    m.add_class::<StaticInvoice>()?;
    m.add_class::<HeldAsyncHtlc>()?;
    m.add_class::<HeldHop>()?;
    m.add_class::<PendingIntercept>()?;
    m.add_class::<OnionMessageStats>()?;
    m.add_class::<NodeOptions>()
}
