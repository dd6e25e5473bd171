//! The LSPS services' classes Python sees: the LSPS2 terms (`Lsps2Options`, part of the node
//! options) and the JIT channels sold (`JitChannel`).

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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Lsps2Options>()?;
    m.add_class::<JitChannel>()
}
