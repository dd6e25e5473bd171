//! The LSPS1 service (bLIP-51, buy a channel), answered by the engine itself: lightning-
//! liquidity 0.2's own LSPS1 service is compiled out, keeps its orders in memory and fails a
//! second `get_order`. `get_info` answers the operator's terms, `create_order` records the order
//! with a BOLT11 invoice for its total (node.sqlite, bounded per client and in total),
//! `get_order` answers the stored order, as often as asked. The channel is opened once the
//! invoice is paid (`lsps1_open`). lightning-liquidity's public message types give the JSON.

use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::PublicKey;
use lightning::ln::channelmanager::Bolt11InvoiceParameters;
use lightning::sign::{EntropySource, KeysManager};
use lightning::util::logger::Level;
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description};
use lightning_liquidity::lsps0::ser::LSPSResponseError;
use lightning_liquidity::lsps1::msgs::{
    LSPS1CreateOrderRequest, LSPS1CreateOrderResponse, LSPS1GetInfoResponse, LSPS1GetOrderRequest, LSPS1OrderParams,
    LSPS1Response,
};
use serde_json::Value;

use super::lsps1_terms::{
    check, error, fee_sat, funding_fee_sat, funding_target, invalid_params, options, order_mismatch, order_response,
    CLIENT_REJECTED, INTERNAL_ERROR, INVALID_PARAMS, MAX_TOKEN_BYTES, MIN_FUNDING_CONFIRMS_WITHIN, NOT_FOUND,
};
use crate::chain::ChainSource;
use crate::config::Lsps1Options;
use crate::error::Result;
use crate::io::{
    now_secs, Lsps1OnchainTerms, Lsps1OrderRecord, PaymentRecord, SqliteStore, LSPS1_CREATED, LSPS1_EXPECT_PAYMENT,
    STATUS_PENDING,
};
use crate::logger::EngineLogger;
use crate::parse::hexs;
use crate::types::ChannelManager;
use crate::wallet::OnchainWallet;

/// An order id: 16 random bytes, hex.
const ORDER_ID_LEN: usize = 32;

/// What the LSPS1 service needs of the node besides its store: an order's invoice, the wallet's
/// spendable coins, and the fee rate for a confirmation target. A trait so that the service's
/// answers are tested on real requests without a chain.
pub(crate) trait Lsps1Node: Send + Sync {
    fn invoice(
        &self, amount_msat: u64, description: Description, expiry_secs: u32,
    ) -> std::result::Result<Bolt11Invoice, String>;
    fn spendable_sat(&self) -> u64;
    fn feerate_sat_per_kw(&self, target_blocks: u16) -> u32;
    /// The chain the node runs on: a refund address must be of it.
    fn network(&self) -> bitcoin::Network;
    /// A fresh address of the node's wallet, durable before it is returned (an order's, to be
    /// paid on chain), with its derivation index.
    fn onchain_address(&self) -> std::result::Result<(u32, String), String>;
}

/// The node's own: invoices from its channel manager, coins from its wallet, fees from its chain source.
pub(crate) struct LdkLsps1Node {
    pub(crate) channel_manager: Arc<ChannelManager>,
    pub(crate) wallet: Arc<OnchainWallet>,
    pub(crate) chain: Arc<ChainSource>,
    pub(crate) network: bitcoin::Network,
}

impl Lsps1Node for LdkLsps1Node {
    fn invoice(
        &self, amount_msat: u64, description: Description, expiry_secs: u32,
    ) -> std::result::Result<Bolt11Invoice, String> {
        self.channel_manager
            .create_bolt11_invoice(Bolt11InvoiceParameters {
                amount_msats: Some(amount_msat),
                description: Bolt11InvoiceDescription::Direct(description),
                invoice_expiry_delta_secs: Some(expiry_secs),
                min_final_cltv_expiry_delta: None,
                payment_hash: None,
            })
            .map_err(|e| format!("{e:?}"))
    }

    fn spendable_sat(&self) -> u64 {
        self.wallet.balance().spendable_sat
    }

    fn feerate_sat_per_kw(&self, target_blocks: u16) -> u32 {
        self.chain.feerate_sat_per_kw(target_blocks)
    }

    fn network(&self) -> bitcoin::Network {
        self.network
    }

    fn onchain_address(&self) -> std::result::Result<(u32, String), String> {
        self.wallet.new_address_indexed().map(|(i, a)| (i, a.to_string())).map_err(|e| e.to_string())
    }
}

/// The LSPS1 service: what it needs to answer requests as they arrive from the peer manager.
pub(crate) struct Lsps1Service {
    pub(crate) options: Lsps1Options,
    store: Arc<SqliteStore>,
    node: Box<dyn Lsps1Node>,
    keys: Arc<KeysManager>,
    logger: Arc<EngineLogger>,
    /// One channel open at a time: the check that an order has no channel yet and the open
    /// must not interleave (the payment's event and the sweep may both try).
    pub(crate) open_lock: std::sync::Mutex<()>,
    /// One order taken at a time: peers' requests are read concurrently, and the limit, funds
    /// and on-chain checks must see every order taken before (not two pass on the same room).
    order_lock: std::sync::Mutex<()>,
}

impl Lsps1Service {
    pub(crate) fn new(
        options: Lsps1Options, store: Arc<SqliteStore>, node: Box<dyn Lsps1Node>, keys: Arc<KeysManager>,
        logger: Arc<EngineLogger>,
    ) -> Result<Self> {
        check(&options)?;
        let (open_lock, order_lock) = (std::sync::Mutex::new(()), std::sync::Mutex::new(()));
        Ok(Self { options, store, node, keys, logger, open_lock, order_lock })
    }

    /// Why the wallet cannot fund a channel of `channel_sat` for an order published within
    /// `target` blocks: the coins already owed to other paid orders not yet opened (all but
    /// `except`) and the funding fee at today's rate come first.
    /// Each owed order needs its own funding transaction: a fee is held back for every one
    /// (at this order's rate: the node funds every order within a few blocks of the same target).
    /// `with_offers`: the channels of unpaid orders offered on-chain payment count as owed too.
    fn short_of_funds(&self, channel_sat: u64, target: u16, except: &str, with_offers: bool) -> Result<Option<String>> {
        let (mut committed, mut orders) = self.store.lsps1_committed(except)?;
        if with_offers {
            let (sat, n) = self.store.lsps1_onchain_offered(now_secs())?;
            (committed, orders) = (committed.saturating_add(sat), orders.saturating_add(n));
        }
        let fee = funding_fee_sat(self.node.feerate_sat_per_kw(target)).saturating_mul(orders.saturating_add(1));
        let needed = channel_sat.saturating_add(committed).saturating_add(fee);
        let spendable = self.node.spendable_sat();
        Ok((spendable < needed).then(|| {
            format!("the wallet has {spendable} sat, {needed} needed ({committed} owed to paid orders, {fee} for fees)")
        }))
    }

    /// Whether another fresh address may be handed to an order today (`max_onchain_offers_per_day`).
    /// The wallet looks up every address it ever handed out at each sync and an unpaid order's
    /// address is never reused (a late payment to it would pay a stranger's order), so this
    /// bounds how fast strangers with many node ids can grow that work. Past it, or if the
    /// count cannot be read: BOLT11 only.
    fn onchain_offer_left(&self, o: &Lsps1Options) -> bool {
        match self.store.lsps1_onchain_offers_since(now_secs().saturating_sub(24 * 3600)) {
            Ok(n) if n < u64::from(o.max_onchain_offers_per_day) => true,
            Ok(_) => {
                self.log(Level::Warn, format!("{} on-chain offers in 24 h: BOLT11 only", o.max_onchain_offers_per_day));
                false
            }
            Err(e) => {
                self.log(Level::Error, format!("cannot count today's on-chain offers: {e}"));
                false
            }
        }
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
                Err(_) => LSPS1Response::CreateOrderError(invalid_params()),
                Ok(req) => match self.create_order(client, req.order, req.refund_onchain_address) {
                    Ok(r) => LSPS1Response::CreateOrder(r),
                    Err(e) => LSPS1Response::CreateOrderError(e),
                },
            },
            "lsps1.get_order" => match serde_json::from_value::<LSPS1GetOrderRequest>(params) {
                Err(_) => LSPS1Response::GetOrderError(invalid_params()),
                Ok(req) => match self.get_order(client, &req.order_id.0) {
                    Ok(r) => LSPS1Response::GetOrder(r),
                    Err(e) => LSPS1Response::GetOrderError(e),
                },
            },
            _ => return None,
        })
    }

    fn create_order(
        &self, client: PublicKey, order: LSPS1OrderParams, refund: Option<bitcoin::Address>,
    ) -> std::result::Result<LSPS1CreateOrderResponse, LSPSResponseError> {
        let o = &self.options;
        if order.token.as_ref().is_some_and(|t| t.len() > MAX_TOKEN_BYTES) {
            return Err(error(INVALID_PARAMS, format!("token longer than {MAX_TOKEN_BYTES} bytes"), Some("token")));
        }
        if let Some(a) = &refund {
            // lightning-liquidity reads the address without checking its chain.
            if !a.as_unchecked().is_valid_for_network(self.node.network()) {
                let why = format!("refund_onchain_address is not a {} address", self.node.network());
                return Err(error(INVALID_PARAMS, why, Some("refund_onchain_address")));
            }
        }
        if let Some(e) = order_mismatch(o, &order) {
            self.log(Level::Info, format!("order of {client} refused: {}", e.message));
            return Err(e);
        }
        let internal = |what: &str, e: String| {
            self.log(Level::Error, format!("cannot take the order of {client}: {what}: {e}"));
            error(INTERNAL_ERROR, "internal error", None)
        };
        let _one_at_a_time = self.order_lock.lock().unwrap_or_else(|p| p.into_inner());
        // The cheap checks first: a client past its limits costs no invoice.
        let now = now_secs();
        match self.store.lsps1_no_room(&client.to_string(), now, o.max_pending_per_client, o.max_pending_total) {
            Ok(None) => {}
            Ok(Some(why)) => {
                self.log(Level::Warn, format!("order of {client} refused: {why}"));
                return Err(error(CLIENT_REJECTED, why, None));
            }
            Err(e) => return Err(internal("store", e.to_string())),
        }
        let fee = fee_sat(o, order.lsp_balance_sat);
        let total = fee.saturating_add(order.client_balance_sat);
        // The whole channel is funded from the wallet (the client side is pushed).
        let channel_sat = order.lsp_balance_sat.saturating_add(order.client_balance_sat);
        match self.short_of_funds(channel_sat, funding_target(&order), "", false) {
            Ok(None) => {}
            Ok(Some(why)) => {
                self.log(Level::Warn, format!("order of {client} refused: {why}"));
                return Err(error(CLIENT_REJECTED, "the LSP cannot fund this channel now", None));
            }
            Err(e) => return Err(internal("store", e.to_string())),
        }
        let params = serde_json::to_string(&order).map_err(|e| internal("params", e.to_string()))?;
        let random = self.keys.get_secure_random_bytes();
        let order_id = hexs(&random[..ORDER_ID_LEN / 2]);
        let user_channel_id = u128::from_be_bytes(random[16..32].try_into().unwrap_or([2; 16]));
        let desc =
            Description::new(format!("LSPS1 order {order_id}")).map_err(|e| internal("description", e.to_string()))?;
        let invoice = self
            .node
            .invoice(total.saturating_mul(1000), desc, o.order_valid_secs)
            .map_err(|e| internal("invoice", e))?;
        let hash = hexs(invoice.payment_hash().as_byte_array());
        // On chain too, if the operator allows it and the total is worth a coin of its own. The
        // 0-conf fee rate bLIP-51 requires is today's for the next block (0-conf is not offered).
        let onchain = if o.onchain_payment
            && total >= o.min_onchain_payment_size_sat
            && self.onchain_offer_left(o)
            && matches!(self.short_of_funds(channel_sat, funding_target(&order), "", true), Ok(None))
        {
            let (idx, address) = self.node.onchain_address().map_err(|e| internal("address", e))?;
            // Lent for good: the wallet learns it again after a rebuild, and looks it up less once lapsed.
            self.store.lsps1_lend_address(idx, now).map_err(|e| internal("store", e.to_string()))?;
            Some(Lsps1OnchainTerms {
                address,
                min_confirmations: o.min_onchain_payment_confirmations,
                min_fee_for_0conf_kwu: u64::from(self.node.feerate_sat_per_kw(1)),
            })
        } else {
            None
        };
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
            refund_onchain_address: refund.map(|a| a.to_string()),
            open_attempts: 0,
            last_error: None,
            next_attempt_at: 0,
            claim_approved_at: None,
            funding_made: None,
            onchain,
            onchain_received_sat: 0,
            onchain_outpoints: None,
            paid_by: None,
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
        let ways = if record.onchain.is_some() { "by invoice or on chain" } else { "by invoice" };
        self.log(
            Level::Info,
            format!("order {order_id} of {client}: {} sat channel, {total} sat to pay {ways}", order.lsp_balance_sat),
        );
        order_response(&record, now).map_err(|e| internal("answer", e))
    }

    /// The stored order, as often as asked; only its own client may read it.
    fn get_order(
        &self, client: PublicKey, order_id: &str,
    ) -> std::result::Result<LSPS1CreateOrderResponse, LSPSResponseError> {
        let not_found = || error(NOT_FOUND, "not found", None);
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
    /// the payment): None if the hash is not an order's; Some(Err) says why it may not. Some(Ok):
    /// the claim is approved, and recorded so (`lsps1_approve_claim`) before the caller claims:
    /// from then the order's coins count as owed when the next payment is judged.
    pub(crate) fn claimable(&self, payment_hash: &str) -> Result<Option<std::result::Result<(), String>>> {
        let Some(r) = self.store.lsps1_order_by_hash(payment_hash)? else {
            if self.store.lsps1_tombstoned(payment_hash)? {
                return Ok(Some(Err("its order expired and was deleted".into())));
            }
            return Ok(None);
        };
        if r.payment_state != LSPS1_EXPECT_PAYMENT || r.state != LSPS1_CREATED {
            return Ok(Some(Err(format!("order {} is {} / {}", r.order_id, r.state, r.payment_state))));
        }
        if r.expires_at <= now_secs() {
            return Ok(Some(Err(format!("order {} expired", r.order_id))));
        }
        let target = serde_json::from_str::<LSPS1OrderParams>(&r.params)
            .map(|p| funding_target(&p))
            .unwrap_or(MIN_FUNDING_CONFIRMS_WITHIN);
        let channel_sat = r.lsp_balance_sat.saturating_add(r.client_balance_sat);
        if let Some(why) = self.short_of_funds(channel_sat, target, &r.order_id, false)? {
            return Ok(Some(Err(format!("order {}: {why}", r.order_id))));
        }
        if !self.store.lsps1_approve_claim(&r.order_id, now_secs())? {
            return Ok(Some(Err(format!("order {} is no longer waiting for payment", r.order_id))));
        }
        Ok(Some(Ok(())))
    }
}

/// With LSPS1 off: whether `payment_hash` is an order's (any state) or a deleted order's. Such
/// an invoice is never taken as an ordinary payment: no service runs to open its channel.
pub(crate) fn order_hash_known(store: &SqliteStore, payment_hash: &str) -> Result<bool> {
    Ok(store.lsps1_order_by_hash(payment_hash)?.is_some() || store.lsps1_tombstoned(payment_hash)?)
}
