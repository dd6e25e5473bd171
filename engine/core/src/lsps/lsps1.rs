//! The LSPS1 service (bLIP-51, buy a channel), answered by the engine itself: lightning-
//! liquidity 0.2's own LSPS1 service is compiled out, keeps its orders in memory and fails a
//! second `get_order`. `get_info` answers the operator's terms, `create_order` records the order
//! with a BOLT11 invoice for its total (node.sqlite, bounded per client and in total),
//! `get_order` answers the stored order, as often as asked. The channel is opened once the
//! invoice is paid (`lsps1_open`). lightning-liquidity's public message types give the JSON.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::PublicKey;
use bitcoin::OutPoint;
use lightning::ln::channelmanager::Bolt11InvoiceParameters;
use lightning::sign::{EntropySource, KeysManager};
use lightning::util::logger::Level;
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description};
use lightning_liquidity::lsps0::ser::{LSPSDateTime, LSPSResponseError};
use lightning_liquidity::lsps1::msgs::{
    LSPS1Bolt11PaymentInfo, LSPS1ChannelInfo, LSPS1CreateOrderRequest, LSPS1CreateOrderResponse, LSPS1GetInfoResponse,
    LSPS1GetOrderRequest, LSPS1Options, LSPS1OrderId, LSPS1OrderParams, LSPS1OrderState, LSPS1PaymentInfo,
    LSPS1PaymentState, LSPS1Response,
};
use serde_json::Value;

use crate::config::Lsps1Options;
use crate::error::{Error, Result};
use crate::io::{
    now_secs, Lsps1OrderRecord, PaymentRecord, SqliteStore, LSPS1_COMPLETED, LSPS1_CREATED, LSPS1_EXPECT_PAYMENT,
    LSPS1_PAID, STATUS_PENDING,
};
use crate::logger::EngineLogger;
use crate::parse::hexs;
use crate::types::ChannelManager;
use crate::wallet::OnchainWallet;

/// JSON-RPC: the params are not what the method takes (or the order id is unknown).
const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC: our side failed (store, invoice).
const INTERNAL_ERROR: i32 = -32603;
/// bLIP-51: the order is outside the options `get_info` answered.
const OPTION_MISMATCH: i32 = 100;
/// bLIP-51: the LSP will not take this client's order now (too many unpaid, no funds).
const CLIENT_REJECTED: i32 = 101;

/// The LSP asks no confirmations of its own before `channel_ready`: the client sets the depth
/// in its `accept_channel` (ldk-node trusts its LSP for zero-conf).
const MIN_REQUIRED_CONFIRMATIONS: u16 = 0;
/// The most confirmations a client may ask for: more only delays its channel.
const MAX_REQUIRED_CONFIRMATIONS: u16 = 6;
/// The funding is published at the fee for confirmation within this many blocks.
const MIN_FUNDING_CONFIRMS_WITHIN: u16 = 6;
/// Satoshis the wallet must hold beyond the channel for the funding transaction's fee.
const FUNDING_FEE_MARGIN_SAT: u64 = 10_000;
/// Largest channel a peer without `option_support_large_channel` accepts.
const MAX_CHANNEL_SAT: u64 = 16_777_215;
/// An order id: 16 random bytes, hex.
const ORDER_ID_LEN: usize = 32;

/// Refuse terms that could never work, at start-up rather than at the first client.
pub(crate) fn check(o: &Lsps1Options) -> Result<()> {
    let bad = |why: String| Err(Error::Config(format!("lsps1: {why}")));
    if o.min_channel_sat < 20_000 || o.min_channel_sat > o.max_channel_sat {
        return bad(format!(
            "min_channel_sat {} must be at least 20000 and at most max_channel_sat {}",
            o.min_channel_sat, o.max_channel_sat
        ));
    }
    if o.max_channel_sat > MAX_CHANNEL_SAT {
        return bad(format!("max_channel_sat {} must be at most {MAX_CHANNEL_SAT}", o.max_channel_sat));
    }
    if o.max_client_balance_sat > o.max_channel_sat - o.min_channel_sat {
        return bad(format!(
            "max_client_balance_sat {} leaves no room for the LSP side (max_channel_sat {} less min_channel_sat {})",
            o.max_client_balance_sat, o.max_channel_sat, o.min_channel_sat
        ));
    }
    if o.min_channel_expiry_blocks == 0 || o.min_channel_expiry_blocks > o.max_channel_expiry_blocks {
        return bad(format!(
            "min_channel_expiry_blocks {} must be above 0 and at most max_channel_expiry_blocks {}",
            o.min_channel_expiry_blocks, o.max_channel_expiry_blocks
        ));
    }
    if o.fee_ppm >= 1_000_000 {
        return bad(format!("fee_ppm {} must be below 1000000", o.fee_ppm));
    }
    if o.order_valid_secs < 60 {
        return bad(format!("order_valid_secs {} leaves a client no time to pay (at least 60)", o.order_valid_secs));
    }
    if o.max_pending_per_client == 0 || o.max_pending_total == 0 {
        return bad("max_pending_per_client and max_pending_total must be at least 1".into());
    }
    Ok(())
}

/// The fee for an LSP side of `lsp_balance_sat`: the base plus `fee_ppm` of it, rounded up.
pub(crate) fn fee_sat(o: &Lsps1Options, lsp_balance_sat: u64) -> u64 {
    let ppm = (u128::from(lsp_balance_sat) * u128::from(o.fee_ppm)).div_ceil(1_000_000);
    o.fee_base_sat.saturating_add(u64::try_from(ppm).unwrap_or(u64::MAX))
}

/// The options answered to `lsps1.get_info`: all ten fields (ldk-node needs every one).
pub(crate) fn options(o: &Lsps1Options) -> LSPS1Options {
    LSPS1Options {
        min_required_channel_confirmations: MIN_REQUIRED_CONFIRMATIONS,
        min_funding_confirms_within_blocks: MIN_FUNDING_CONFIRMS_WITHIN,
        supports_zero_channel_reserve: false,
        max_channel_expiry_blocks: o.max_channel_expiry_blocks,
        min_initial_client_balance_sat: 0,
        max_initial_client_balance_sat: o.max_client_balance_sat,
        min_initial_lsp_balance_sat: o.min_channel_sat,
        max_initial_lsp_balance_sat: o.max_channel_sat,
        min_channel_balance_sat: o.min_channel_sat,
        max_channel_balance_sat: o.max_channel_sat,
    }
}

fn error(code: i32, message: impl Into<String>, property: Option<&str>) -> LSPSResponseError {
    LSPSResponseError {
        code,
        message: message.into(),
        data: property.map(|p| serde_json::json!({ "property": p }).to_string()),
    }
}

/// Why an order is outside the terms, naming the property (bLIP-51 `option_mismatch`).
pub(crate) fn order_mismatch(o: &Lsps1Options, p: &LSPS1OrderParams) -> Option<LSPSResponseError> {
    let mismatch = |property: &str, why: String| Some(error(OPTION_MISMATCH, why, Some(property)));
    if p.lsp_balance_sat < o.min_channel_sat || p.lsp_balance_sat > o.max_channel_sat {
        return mismatch(
            "lsp_balance_sat",
            format!("lsp_balance_sat must be {}..={}", o.min_channel_sat, o.max_channel_sat),
        );
    }
    if p.client_balance_sat > o.max_client_balance_sat {
        return mismatch(
            "client_balance_sat",
            format!("client_balance_sat must be at most {}", o.max_client_balance_sat),
        );
    }
    match p.lsp_balance_sat.checked_add(p.client_balance_sat) {
        Some(total) if total <= o.max_channel_sat => {}
        _ => return mismatch("lsp_balance_sat", format!("the channel must be at most {} sat", o.max_channel_sat)),
    }
    if p.channel_expiry_blocks < o.min_channel_expiry_blocks || p.channel_expiry_blocks > o.max_channel_expiry_blocks {
        return mismatch(
            "channel_expiry_blocks",
            format!("channel_expiry_blocks must be {}..={}", o.min_channel_expiry_blocks, o.max_channel_expiry_blocks),
        );
    }
    if p.required_channel_confirmations > MAX_REQUIRED_CONFIRMATIONS {
        return mismatch(
            "required_channel_confirmations",
            format!("required_channel_confirmations must be at most {MAX_REQUIRED_CONFIRMATIONS}"),
        );
    }
    if p.funding_confirms_within_blocks < MIN_FUNDING_CONFIRMS_WITHIN {
        return mismatch(
            "funding_confirms_within_blocks",
            format!("funding_confirms_within_blocks must be at least {MIN_FUNDING_CONFIRMS_WITHIN}"),
        );
    }
    if p.announce_channel {
        return mismatch("announce_channel", "only unannounced channels are sold".into());
    }
    None
}

fn datetime(secs: u64) -> LSPSDateTime {
    LSPSDateTime::new_from_duration_since_epoch(Duration::from_secs(secs))
}

/// The stored order as bLIP-51 answers it at `now`. An unpaid order past its expiry reads as
/// failed even before the sweep writes so.
pub(crate) fn order_response(r: &Lsps1OrderRecord, now: u64) -> std::result::Result<LSPS1CreateOrderResponse, String> {
    let order: LSPS1OrderParams = serde_json::from_str(&r.params).map_err(|e| format!("stored params: {e}"))?;
    let invoice = Bolt11Invoice::from_str(&r.invoice).map_err(|e| format!("stored invoice: {e}"))?;
    let unpaid = r.payment_state == LSPS1_EXPECT_PAYMENT;
    let order_state = match r.state.as_str() {
        LSPS1_COMPLETED => LSPS1OrderState::Completed,
        LSPS1_CREATED if !(unpaid && r.expires_at <= now) => LSPS1OrderState::Created,
        _ => LSPS1OrderState::Failed,
    };
    let state = match r.payment_state.as_str() {
        LSPS1_PAID => LSPS1PaymentState::Paid,
        LSPS1_EXPECT_PAYMENT => LSPS1PaymentState::ExpectPayment,
        _ => LSPS1PaymentState::Refunded,
    };
    let channel = match (&r.funding_outpoint, r.funded_at) {
        (Some(outpoint), Some(funded_at)) => {
            let funding_outpoint = OutPoint::from_str(outpoint).map_err(|e| format!("stored outpoint: {e}"))?;
            // The lease, in wall-clock time: ten minutes a block.
            let lease = u64::from(order.channel_expiry_blocks).saturating_mul(600);
            Some(LSPS1ChannelInfo {
                funded_at: datetime(funded_at),
                funding_outpoint,
                expires_at: datetime(funded_at.saturating_add(lease)),
            })
        }
        _ => None,
    };
    Ok(LSPS1CreateOrderResponse {
        order_id: LSPS1OrderId(r.order_id.clone()),
        order,
        created_at: datetime(r.created_at),
        order_state,
        payment: LSPS1PaymentInfo {
            bolt11: Some(LSPS1Bolt11PaymentInfo {
                state,
                expires_at: datetime(r.expires_at),
                fee_total_sat: r.fee_sat,
                order_total_sat: r.total_sat,
                invoice,
            }),
            bolt12: None,
            // On-chain payment is not offered: only the BOLT11 invoice pays an order.
            onchain: None,
        },
        channel,
    })
}

/// The LSPS1 service: what it needs to answer requests as they arrive from the peer manager.
pub(crate) struct Lsps1Service {
    pub(crate) options: Lsps1Options,
    store: Arc<SqliteStore>,
    channel_manager: Arc<ChannelManager>,
    keys: Arc<KeysManager>,
    wallet: Arc<OnchainWallet>,
    logger: Arc<EngineLogger>,
    /// One channel open at a time: the check that an order has no channel yet and the open
    /// must not interleave (the payment's event and the sweep may both try).
    pub(crate) open_lock: std::sync::Mutex<()>,
}

impl Lsps1Service {
    pub(crate) fn new(
        options: Lsps1Options, store: Arc<SqliteStore>, channel_manager: Arc<ChannelManager>, keys: Arc<KeysManager>,
        wallet: Arc<OnchainWallet>, logger: Arc<EngineLogger>,
    ) -> Result<Self> {
        check(&options)?;
        Ok(Self { options, store, channel_manager, keys, wallet, logger, open_lock: std::sync::Mutex::new(()) })
    }

    fn log(&self, level: Level, msg: String) {
        self.logger.engine(level, format!("lsps1: {msg}"));
    }

    /// Answer one `lsps1.*` request of `client`; None: not an LSPS1 method we know (the caller
    /// answers "method not found").
    pub(crate) fn handle(&self, client: PublicKey, method: &str, params: Value) -> Option<LSPS1Response> {
        Some(match method {
            "lsps1.get_info" => LSPS1Response::GetInfo(LSPS1GetInfoResponse { options: options(&self.options) }),
            "lsps1.create_order" => match serde_json::from_value::<LSPS1CreateOrderRequest>(params) {
                Err(e) => LSPS1Response::CreateOrderError(error(INVALID_PARAMS, format!("invalid params: {e}"), None)),
                Ok(req) => match self.create_order(client, req.order) {
                    Ok(r) => LSPS1Response::CreateOrder(r),
                    Err(e) => LSPS1Response::CreateOrderError(e),
                },
            },
            "lsps1.get_order" => match serde_json::from_value::<LSPS1GetOrderRequest>(params) {
                Err(e) => LSPS1Response::GetOrderError(error(INVALID_PARAMS, format!("invalid params: {e}"), None)),
                Ok(req) => match self.get_order(client, &req.order_id.0) {
                    Ok(r) => LSPS1Response::GetOrder(r),
                    Err(e) => LSPS1Response::GetOrderError(e),
                },
            },
            _ => return None,
        })
    }

    fn create_order(
        &self, client: PublicKey, order: LSPS1OrderParams,
    ) -> std::result::Result<LSPS1CreateOrderResponse, LSPSResponseError> {
        let o = &self.options;
        if let Some(e) = order_mismatch(o, &order) {
            self.log(Level::Info, format!("order of {client} refused: {}", e.message));
            return Err(e);
        }
        let fee = fee_sat(o, order.lsp_balance_sat);
        let total = fee.saturating_add(order.client_balance_sat);
        // The whole channel is funded from the wallet (the client side is pushed).
        let needed =
            order.lsp_balance_sat.saturating_add(order.client_balance_sat).saturating_add(FUNDING_FEE_MARGIN_SAT);
        let spendable = self.wallet.balance().spendable_sat;
        if spendable < needed {
            self.log(
                Level::Warn,
                format!("order of {client} refused: the wallet has {spendable} sat, {needed} needed"),
            );
            return Err(error(CLIENT_REJECTED, "the LSP cannot fund this channel now", None));
        }
        let internal = |what: &str, e: String| {
            self.log(Level::Error, format!("cannot take the order of {client}: {what}: {e}"));
            error(INTERNAL_ERROR, "internal error", None)
        };
        let params = serde_json::to_string(&order).map_err(|e| internal("params", e.to_string()))?;
        let random = self.keys.get_secure_random_bytes();
        let order_id = hexs(&random[..ORDER_ID_LEN / 2]);
        let user_channel_id = u128::from_be_bytes(random[16..32].try_into().unwrap_or([2; 16]));
        let desc =
            Description::new(format!("LSPS1 order {order_id}")).map_err(|e| internal("description", e.to_string()))?;
        let invoice = self
            .channel_manager
            .create_bolt11_invoice(Bolt11InvoiceParameters {
                amount_msats: Some(total.saturating_mul(1000)),
                description: Bolt11InvoiceDescription::Direct(desc),
                invoice_expiry_delta_secs: Some(o.order_valid_secs),
                min_final_cltv_expiry_delta: None,
                payment_hash: None,
            })
            .map_err(|e| internal("invoice", format!("{e:?}")))?;
        let now = now_secs();
        let hash = hexs(invoice.payment_hash().as_byte_array());
        let record = Lsps1OrderRecord {
            order_id: order_id.clone(),
            client_node_id: client.to_string(),
            params,
            lsp_balance_sat: order.lsp_balance_sat,
            client_balance_sat: order.client_balance_sat,
            user_channel_id,
            state: LSPS1_CREATED.into(),
            payment_state: LSPS1_EXPECT_PAYMENT.into(),
            invoice: invoice.to_string(),
            payment_hash: hash.clone(),
            fee_sat: fee,
            total_sat: total,
            channel_id: None,
            funding_outpoint: None,
            funded_at: None,
            created_at: now,
            expires_at: invoice.duration_since_epoch().as_secs().saturating_add(u64::from(o.order_valid_secs)),
            updated_at: now,
        };
        let payment = PaymentRecord {
            payment_id: hash.clone(),
            payment_hash: hash,
            direction: "inbound".into(),
            status: STATUS_PENDING.into(),
            amount_msat: Some(total.saturating_mul(1000)),
            fee_msat: None,
            preimage: None,
            bolt11: Some(record.invoice.clone()),
            failure: None,
            created_at: now,
            updated_at: now,
        };
        match self.store.lsps1_insert_order(&record, &payment, o.max_pending_per_client, o.max_pending_total) {
            Ok(None) => {}
            Ok(Some(why)) => {
                self.log(Level::Warn, format!("order of {client} refused: {why}"));
                return Err(error(CLIENT_REJECTED, why, None));
            }
            Err(e) => return Err(internal("store", e.to_string())),
        }
        self.log(
            Level::Info,
            format!("order {order_id} of {client}: {} sat channel, {total} sat to pay", order.lsp_balance_sat),
        );
        order_response(&record, now).map_err(|e| internal("answer", e))
    }

    /// The stored order, as often as asked; only its own client may read it.
    fn get_order(
        &self, client: PublicKey, order_id: &str,
    ) -> std::result::Result<LSPS1CreateOrderResponse, LSPSResponseError> {
        let not_found = || error(INVALID_PARAMS, "order not found", Some("order_id"));
        if order_id.len() != ORDER_ID_LEN {
            return Err(not_found());
        }
        match self.store.lsps1_order(order_id) {
            Ok(Some(r)) if r.client_node_id == client.to_string() => order_response(&r, now_secs()).map_err(|e| {
                self.log(Level::Error, format!("cannot answer order {order_id}: {e}"));
                error(INTERNAL_ERROR, "internal error", None)
            }),
            Ok(_) => Err(not_found()),
            Err(e) => {
                self.log(Level::Error, format!("cannot read order {order_id}: {e}"));
                Err(error(INTERNAL_ERROR, "internal error", None))
            }
        }
    }

    /// Whether the order with this payment hash may be paid now (checked before the LSP claims
    /// the payment): None if the hash is not an order's; Some(Err) says why it may not.
    pub(crate) fn claimable(&self, payment_hash: &str) -> Result<Option<std::result::Result<(), String>>> {
        let Some(r) = self.store.lsps1_order_by_hash(payment_hash)? else { return Ok(None) };
        if r.payment_state != LSPS1_EXPECT_PAYMENT || r.state != LSPS1_CREATED {
            return Ok(Some(Err(format!("order {} is {} / {}", r.order_id, r.state, r.payment_state))));
        }
        if r.expires_at <= now_secs() {
            return Ok(Some(Err(format!("order {} expired", r.order_id))));
        }
        let needed = r.lsp_balance_sat.saturating_add(r.client_balance_sat).saturating_add(FUNDING_FEE_MARGIN_SAT);
        let spendable = self.wallet.balance().spendable_sat;
        if spendable < needed {
            return Ok(Some(Err(format!("the wallet has {spendable} sat, order {} needs {needed}", r.order_id))));
        }
        Ok(Some(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_invoice() -> String {
        use bitcoin::secp256k1::{Secp256k1, SecretKey};
        use lightning_invoice::{Currency, InvoiceBuilder};
        let key = SecretKey::from_slice(&[7; 32]).unwrap();
        let secp = Secp256k1::new();
        InvoiceBuilder::new(Currency::Regtest)
            .description("LSPS1 order".into())
            .payment_hash(bitcoin::hashes::sha256::Hash::from_byte_array([1; 32]))
            .payment_secret(lightning_types::payment::PaymentSecret([2; 32]))
            .current_timestamp()
            .min_final_cltv_expiry_delta(144)
            .amount_milli_satoshis(4_000_000)
            .build_signed(|h| secp.sign_ecdsa_recoverable(h, &key))
            .unwrap()
            .to_string()
    }

    fn params(lsp: u64, client: u64, expiry: u32) -> LSPS1OrderParams {
        LSPS1OrderParams {
            lsp_balance_sat: lsp,
            client_balance_sat: client,
            required_channel_confirmations: 0,
            funding_confirms_within_blocks: 6,
            channel_expiry_blocks: expiry,
            token: None,
            announce_channel: false,
        }
    }

    #[test]
    fn the_defaults_pass_the_check_and_impossible_terms_name_their_key() {
        assert!(check(&Lsps1Options::default()).is_ok());
        let cases = [
            (Lsps1Options { min_channel_sat: 1_000, ..Default::default() }, "min_channel_sat"),
            (Lsps1Options { max_channel_sat: 20_000_000, ..Default::default() }, "max_channel_sat"),
            (Lsps1Options { max_client_balance_sat: 16_700_000, ..Default::default() }, "max_client_balance_sat"),
            (Lsps1Options { min_channel_expiry_blocks: 0, ..Default::default() }, "min_channel_expiry_blocks"),
            (Lsps1Options { fee_ppm: 1_000_000, ..Default::default() }, "fee_ppm"),
            (Lsps1Options { order_valid_secs: 30, ..Default::default() }, "order_valid_secs"),
            (Lsps1Options { max_pending_total: 0, ..Default::default() }, "max_pending_total"),
        ];
        for (o, key) in cases {
            let err = check(&o).unwrap_err().to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn the_fee_is_the_base_plus_ppm_of_the_lsp_side_rounded_up() {
        let o = Lsps1Options { fee_base_sat: 1_000, fee_ppm: 10_000, ..Default::default() };
        assert_eq!(fee_sat(&o, 500_000), 6_000);
        assert_eq!(fee_sat(&o, 1), 1_001);
        assert_eq!(fee_sat(&Lsps1Options { fee_base_sat: u64::MAX, ..o }, u64::MAX), u64::MAX);
    }

    #[test]
    fn get_info_answers_every_option_as_bolt_strings() {
        let o = Lsps1Options { max_client_balance_sat: 50_000, ..Default::default() };
        let v = serde_json::to_value(LSPS1GetInfoResponse { options: options(&o) }).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 10);
        assert_eq!(v["max_initial_client_balance_sat"], "50000");
        assert_eq!(v["min_channel_balance_sat"], "100000");
        assert_eq!(v["min_required_channel_confirmations"], 0);
    }

    #[test]
    fn an_order_outside_the_terms_is_refused_naming_the_property() {
        let o = Lsps1Options { max_client_balance_sat: 10_000, ..Default::default() };
        assert!(order_mismatch(&o, &params(200_000, 10_000, 1_000)).is_none());
        let property = |p: LSPS1OrderParams| {
            let e = order_mismatch(&o, &p).unwrap();
            assert_eq!(e.code, OPTION_MISMATCH);
            serde_json::from_str::<Value>(&e.data.unwrap()).unwrap()["property"].as_str().unwrap().to_string()
        };
        assert_eq!(property(params(99_999, 0, 1_000)), "lsp_balance_sat");
        assert_eq!(property(params(200_000, 10_001, 1_000)), "client_balance_sat");
        assert_eq!(property(params(16_777_215, 1, 1_000)), "lsp_balance_sat");
        assert_eq!(property(params(200_000, 0, 143)), "channel_expiry_blocks");
        assert_eq!(property(params(200_000, 0, 13_141)), "channel_expiry_blocks");
        assert_eq!(
            property(LSPS1OrderParams { announce_channel: true, ..params(200_000, 0, 1_000) }),
            "announce_channel"
        );
        assert_eq!(
            property(LSPS1OrderParams { required_channel_confirmations: 7, ..params(200_000, 0, 1_000) }),
            "required_channel_confirmations"
        );
        assert_eq!(
            property(LSPS1OrderParams { funding_confirms_within_blocks: 5, ..params(200_000, 0, 1_000) }),
            "funding_confirms_within_blocks"
        );
    }

    #[test]
    fn a_stored_order_is_answered_with_its_params_verbatim_and_its_state_at_the_time() {
        let invoice = test_invoice();
        let p = params(200_000, 0, 1_000);
        let mut r = Lsps1OrderRecord {
            order_id: "ab".repeat(16),
            client_node_id: "02aa".into(),
            params: serde_json::to_string(&p).unwrap(),
            lsp_balance_sat: 200_000,
            client_balance_sat: 0,
            user_channel_id: 1,
            state: LSPS1_CREATED.into(),
            payment_state: LSPS1_EXPECT_PAYMENT.into(),
            invoice,
            payment_hash: "00".into(),
            fee_sat: 4_000,
            total_sat: 4_000,
            channel_id: None,
            funding_outpoint: None,
            funded_at: None,
            created_at: 1_000,
            expires_at: 2_000,
            updated_at: 1_000,
        };
        let a = order_response(&r, 1_500).unwrap();
        assert_eq!(a.order, p);
        assert_eq!(a.order_state, LSPS1OrderState::Created);
        let b = a.payment.bolt11.unwrap();
        assert_eq!((b.state, b.fee_total_sat, b.order_total_sat), (LSPS1PaymentState::ExpectPayment, 4_000, 4_000));
        assert!(a.channel.is_none());
        // Unpaid past its expiry: failed, whatever the row says yet.
        assert_eq!(order_response(&r, 2_000).unwrap().order_state, LSPS1OrderState::Failed);
        r.state = LSPS1_COMPLETED.into();
        r.payment_state = LSPS1_PAID.into();
        r.funding_outpoint = Some(format!("{}:1", "11".repeat(32)));
        r.funded_at = Some(1_700);
        let c = order_response(&r, 9_999).unwrap();
        assert_eq!(c.order_state, LSPS1OrderState::Completed);
        let ch = c.channel.unwrap();
        assert_eq!(ch.funding_outpoint.vout, 1);
        assert_eq!(ch.expires_at.0.timestamp(), 1_700 + 600_000);
    }
}
