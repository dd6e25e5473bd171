//! The LSPS services' classes Python sees: the LSPS2 terms (`Lsps2Options`, part of the node
//! options) and the JIT channels sold (`JitChannel`); the LSPS1 terms (`Lsps1Options`) and the
//! channel orders (`Lsps1Order`).

use pyo3::prelude::*;

use crate::types::record;

/// The LSPS2 (JIT channel) service's terms; `Lsps2Options()` holds the engine's defaults.
#[pyclass(frozen, get_all, eq, from_py_object, module = "lsp_node._ldk")]
#[derive(Clone, Debug, PartialEq)]
pub struct Lsps2Options {
    pub min_payment_size_msat: u64,
    pub max_payment_size_msat: u64,
    pub min_fee_msat: u64,
    pub proportional_ppm: u32,
    pub min_lifetime_blocks: u32,
    pub max_client_to_self_delay: u32,
    pub valid_for_secs: u32,
    pub channel_over_payment_sat: u64,
    pub max_channel_sat: u64,
    pub zero_conf: bool,
    pub cltv_expiry_delta: u32,
    pub max_unpaid_per_client: u32,
    pub max_unpaid_total_sat: u64,
}

fn lsps2_default() -> lsp_engine::Lsps2Options {
    lsp_engine::Lsps2Options::default()
}

#[pymethods]
impl Lsps2Options {
    #[new]
    #[pyo3(signature = (
        *,
        min_payment_size_msat = lsps2_default().min_payment_size_msat,
        max_payment_size_msat = lsps2_default().max_payment_size_msat,
        min_fee_msat = lsps2_default().min_fee_msat,
        proportional_ppm = lsps2_default().proportional_ppm,
        min_lifetime_blocks = lsps2_default().min_lifetime_blocks,
        max_client_to_self_delay = lsps2_default().max_client_to_self_delay,
        valid_for_secs = lsps2_default().valid_for_secs,
        channel_over_payment_sat = lsps2_default().channel_over_payment_sat,
        max_channel_sat = lsps2_default().max_channel_sat,
        zero_conf = lsps2_default().zero_conf,
        cltv_expiry_delta = lsps2_default().cltv_expiry_delta,
        max_unpaid_per_client = lsps2_default().max_unpaid_per_client,
        max_unpaid_total_sat = lsps2_default().max_unpaid_total_sat,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        min_payment_size_msat: u64, max_payment_size_msat: u64, min_fee_msat: u64, proportional_ppm: u32,
        min_lifetime_blocks: u32, max_client_to_self_delay: u32, valid_for_secs: u32, channel_over_payment_sat: u64,
        max_channel_sat: u64, zero_conf: bool, cltv_expiry_delta: u32, max_unpaid_per_client: u32,
        max_unpaid_total_sat: u64,
    ) -> Self {
        Self {
            min_payment_size_msat,
            max_payment_size_msat,
            min_fee_msat,
            proportional_ppm,
            min_lifetime_blocks,
            max_client_to_self_delay,
            valid_for_secs,
            channel_over_payment_sat,
            max_channel_sat,
            zero_conf,
            cltv_expiry_delta,
            max_unpaid_per_client,
            max_unpaid_total_sat,
        }
    }

    fn __repr__(&self) -> String {
        format!("{self:?}")
    }
}

impl From<&Lsps2Options> for lsp_engine::Lsps2Options {
    fn from(o: &Lsps2Options) -> Self {
        Self {
            min_payment_size_msat: o.min_payment_size_msat,
            max_payment_size_msat: o.max_payment_size_msat,
            min_fee_msat: o.min_fee_msat,
            proportional_ppm: o.proportional_ppm,
            min_lifetime_blocks: o.min_lifetime_blocks,
            max_client_to_self_delay: o.max_client_to_self_delay,
            valid_for_secs: o.valid_for_secs,
            channel_over_payment_sat: o.channel_over_payment_sat,
            max_channel_sat: o.max_channel_sat,
            zero_conf: o.zero_conf,
            cltv_expiry_delta: o.cltv_expiry_delta,
            max_unpaid_per_client: o.max_unpaid_per_client,
            max_unpaid_total_sat: o.max_unpaid_total_sat,
        }
    }
}

record!(
    /// A JIT channel sold over LSPS2: its intercept SCID, client, the fee offer bought, and
    /// `state` (sold, opening, ready, paid, failed, expired); `channel_sat` the channel funded
    /// (None: none was), `skimmed_msat` the fee skimmed from forwards over it so far.
    JitChannel {
        scid: u64,
        client_node_id: String,
        user_channel_id: String,
        payment_size_msat: Option<u64>,
        min_fee_msat: u64,
        proportional_ppm: u32,
        valid_until: String,
        state: String,
        channel_id: Option<String>,
        opening_fee_msat: Option<u64>,
        created_at: u64,
        updated_at: u64,
        channel_sat: Option<u64>,
        skimmed_msat: u64,
    }
);

impl From<lsp_engine::JitChannelRecord> for JitChannel {
    fn from(r: lsp_engine::JitChannelRecord) -> Self {
        Self {
            scid: r.scid,
            client_node_id: r.client_node_id,
            user_channel_id: r.user_channel_id.to_string(),
            payment_size_msat: r.payment_size_msat,
            min_fee_msat: r.min_fee_msat,
            proportional_ppm: r.proportional_ppm,
            valid_until: r.valid_until,
            state: r.state,
            channel_id: r.channel_id,
            opening_fee_msat: r.opening_fee_msat,
            created_at: r.created_at,
            updated_at: r.updated_at,
            channel_sat: r.channel_sat,
            skimmed_msat: r.skimmed_msat,
        }
    }
}

/// The LSPS1 (buy a channel) service's terms; `Lsps1Options()` holds the engine's defaults.
#[pyclass(frozen, get_all, eq, from_py_object, module = "lsp_node._ldk")]
#[derive(Clone, Debug, PartialEq)]
pub struct Lsps1Options {
    pub min_channel_sat: u64,
    pub max_channel_sat: u64,
    pub max_client_balance_sat: u64,
    pub min_channel_expiry_blocks: u32,
    pub max_channel_expiry_blocks: u32,
    pub fee_base_sat: u64,
    pub fee_ppm: u32,
    pub order_valid_secs: u32,
    pub max_pending_per_client: u32,
    pub max_pending_total: u32,
    pub onchain_payment: bool,
    pub min_onchain_payment_confirmations: u16,
    pub min_onchain_payment_size_sat: u64,
    pub max_onchain_offers_per_day: u32,
}

fn lsps1_default() -> lsp_engine::Lsps1Options {
    lsp_engine::Lsps1Options::default()
}

#[pymethods]
impl Lsps1Options {
    #[new]
    #[pyo3(signature = (
        *,
        min_channel_sat = lsps1_default().min_channel_sat,
        max_channel_sat = lsps1_default().max_channel_sat,
        max_client_balance_sat = lsps1_default().max_client_balance_sat,
        min_channel_expiry_blocks = lsps1_default().min_channel_expiry_blocks,
        max_channel_expiry_blocks = lsps1_default().max_channel_expiry_blocks,
        fee_base_sat = lsps1_default().fee_base_sat,
        fee_ppm = lsps1_default().fee_ppm,
        order_valid_secs = lsps1_default().order_valid_secs,
        max_pending_per_client = lsps1_default().max_pending_per_client,
        max_pending_total = lsps1_default().max_pending_total,
        onchain_payment = lsps1_default().onchain_payment,
        min_onchain_payment_confirmations = lsps1_default().min_onchain_payment_confirmations,
        min_onchain_payment_size_sat = lsps1_default().min_onchain_payment_size_sat,
        max_onchain_offers_per_day = lsps1_default().max_onchain_offers_per_day,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        min_channel_sat: u64, max_channel_sat: u64, max_client_balance_sat: u64, min_channel_expiry_blocks: u32,
        max_channel_expiry_blocks: u32, fee_base_sat: u64, fee_ppm: u32, order_valid_secs: u32,
        max_pending_per_client: u32, max_pending_total: u32, onchain_payment: bool,
        min_onchain_payment_confirmations: u16, min_onchain_payment_size_sat: u64, max_onchain_offers_per_day: u32,
    ) -> Self {
        Self {
            min_channel_sat,
            max_channel_sat,
            max_client_balance_sat,
            min_channel_expiry_blocks,
            max_channel_expiry_blocks,
            fee_base_sat,
            fee_ppm,
            order_valid_secs,
            max_pending_per_client,
            max_pending_total,
            onchain_payment,
            min_onchain_payment_confirmations,
            min_onchain_payment_size_sat,
            max_onchain_offers_per_day,
        }
    }

    fn __repr__(&self) -> String {
        format!("{self:?}")
    }
}

impl From<&Lsps1Options> for lsp_engine::Lsps1Options {
    fn from(o: &Lsps1Options) -> Self {
        Self {
            min_channel_sat: o.min_channel_sat,
            max_channel_sat: o.max_channel_sat,
            max_client_balance_sat: o.max_client_balance_sat,
            min_channel_expiry_blocks: o.min_channel_expiry_blocks,
            max_channel_expiry_blocks: o.max_channel_expiry_blocks,
            fee_base_sat: o.fee_base_sat,
            fee_ppm: o.fee_ppm,
            order_valid_secs: o.order_valid_secs,
            max_pending_per_client: o.max_pending_per_client,
            max_pending_total: o.max_pending_total,
            onchain_payment: o.onchain_payment,
            min_onchain_payment_confirmations: o.min_onchain_payment_confirmations,
            min_onchain_payment_size_sat: o.min_onchain_payment_size_sat,
            max_onchain_offers_per_day: o.max_onchain_offers_per_day,
        }
    }
}

record!(
    /// An LSPS1 order: the channel bought (`lsp_balance_sat`, `client_balance_sat`, the order's
    /// bLIP-51 `params` JSON), `state` (CREATED, COMPLETED, FAILED), `payment_state`
    /// (EXPECT_PAYMENT, PAID, REFUNDED), the BOLT11 invoice paying `total_sat` (of which
    /// `fee_sat` is the fee) and the channel once funded; `refund_onchain_address` the client's
    /// (refunds are by hand), `open_attempts` the failed opens of a paid order and `last_error`
    /// the last one's reason (FAILED with PAID: given up, owed a refund). Paid on chain:
    /// `onchain_address` (None: not offered) with the confirmations it needs, what confirmed
    /// there (`onchain_received_sat`, `onchain_outpoints` "txid:vout"), `paid_by` (bolt11,
    /// onchain; None while unpaid) and `refund_owed_sat`, to be refunded by hand (coins that
    /// did not pay the order, or a given-up order's payment).
    Lsps1Order {
        order_id: String,
        client_node_id: String,
        params: String,
        lsp_balance_sat: u64,
        client_balance_sat: u64,
        state: String,
        payment_state: String,
        invoice: String,
        payment_hash: String,
        fee_sat: u64,
        total_sat: u64,
        channel_id: Option<String>,
        funding_outpoint: Option<String>,
        funded_at: Option<u64>,
        created_at: u64,
        expires_at: u64,
        refund_onchain_address: Option<String>,
        open_attempts: u32,
        last_error: Option<String>,
        onchain_address: Option<String>,
        onchain_min_confirmations: Option<u16>,
        onchain_received_sat: u64,
        onchain_outpoints: Vec<String>,
        paid_by: Option<String>,
        refund_owed_sat: u64,
    }
);

impl From<lsp_engine::Lsps1OrderRecord> for Lsps1Order {
    fn from(r: lsp_engine::Lsps1OrderRecord) -> Self {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let refund_owed_sat = r.refund_owed_sat(now);
        Self {
            order_id: r.order_id,
            client_node_id: r.client_node_id,
            params: r.params,
            lsp_balance_sat: r.lsp_balance_sat,
            client_balance_sat: r.client_balance_sat,
            state: r.state,
            payment_state: r.payment_state,
            invoice: r.invoice,
            payment_hash: r.payment_hash,
            fee_sat: r.fee_sat,
            total_sat: r.total_sat,
            channel_id: r.channel_id,
            funding_outpoint: r.funding_outpoint,
            funded_at: r.funded_at,
            created_at: r.created_at,
            expires_at: r.expires_at,
            refund_onchain_address: r.refund_onchain_address,
            open_attempts: r.open_attempts,
            last_error: r.last_error,
            onchain_address: r.onchain.as_ref().map(|o| o.address.clone()),
            onchain_min_confirmations: r.onchain.as_ref().map(|o| o.min_confirmations),
            onchain_received_sat: r.onchain_received_sat,
            onchain_outpoints: r
                .onchain_outpoints
                .as_deref()
                .map(|s| s.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
            paid_by: r.paid_by,
            refund_owed_sat,
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Lsps2Options>()?;
    m.add_class::<JitChannel>()?;
    m.add_class::<Lsps1Options>()?;
    m.add_class::<Lsps1Order>()
}
