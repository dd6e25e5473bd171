//! Driving lightning-liquidity's LSPS2 service: answering its events (`get_info` with the
//! operator's fee offer, `buy` with a fresh intercept SCID, `OpenChannel` by funding the JIT
//! channel) and feeding it the LDK events it needs (the intercepted HTLC, channel ready or
//! failed, payment forwarded). lightning-liquidity forwards the payment itself, with the
//! opening fee skimmed (LDK signals the skim to the client in `update_add_htlc`).

use std::time::SystemTime;

use bitcoin::secp256k1::PublicKey;
use lightning::events::HTLCHandlingFailureType;
use lightning::ln::channelmanager::InterceptId;
use lightning::ln::types::ChannelId;
use lightning::sign::EntropySource;
use lightning::types::payment::PaymentHash;
use lightning::util::logger::Level;
use lightning_liquidity::events::LiquidityEvent;
use lightning_liquidity::lsps0::ser::LSPSRequestId;
use lightning_liquidity::lsps2::event::LSPS2ServiceEvent;
use lightning_liquidity::lsps2::msgs::LSPS2OpeningFeeParams;

use super::params;
use crate::config::{user_config, Lsps2Options};
use crate::io::{JitChannelRecord, JIT_FAILED, JIT_OPENING, JIT_PAID, JIT_READY, JIT_SOLD};
use crate::node::Core;
use crate::parse::hexs;

impl Core {
    fn lsps2_options(&self) -> Option<&Lsps2Options> {
        self.config.options.lsps2.as_ref()
    }

    fn lsps2_log(&self, level: Level, msg: String) {
        self.logger.engine(level, format!("lsps2: {msg}"));
    }

    /// One event of the liquidity manager (LSPS0 needs none: lightning-liquidity answers it).
    pub(crate) async fn handle_liquidity_event(&self, event: LiquidityEvent) {
        match event {
            LiquidityEvent::LSPS2Service(LSPS2ServiceEvent::GetInfo { request_id, counterparty_node_id, .. }) => {
                self.lsps2_get_info(request_id, counterparty_node_id)
            }
            LiquidityEvent::LSPS2Service(LSPS2ServiceEvent::BuyRequest {
                request_id,
                counterparty_node_id,
                opening_fee_params,
                payment_size_msat,
            }) => self.lsps2_buy(request_id, counterparty_node_id, opening_fee_params, payment_size_msat).await,
            LiquidityEvent::LSPS2Service(LSPS2ServiceEvent::OpenChannel {
                their_network_key,
                amt_to_forward_msat,
                opening_fee_msat,
                user_channel_id,
                intercept_scid,
            }) => {
                self.lsps2_open_channel(
                    their_network_key,
                    amt_to_forward_msat,
                    opening_fee_msat,
                    user_channel_id,
                    intercept_scid,
                )
                .await
            }
            // Services left off (LSPS1, LSPS5) and the client side raise nothing here.
            _ => {}
        }
    }

    /// Any client may ask (no token is required): the offer is the operator's public price list.
    fn lsps2_get_info(&self, request_id: LSPSRequestId, client: PublicKey) {
        let (Some(o), Some(handler)) = (self.lsps2_options(), self.liquidity.lsps2_service_handler()) else { return };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        if let Err(e) = handler.opening_fee_params_generated(&client, request_id, params::fee_menu(o, now)) {
            self.lsps2_log(Level::Warn, format!("cannot answer get_info of {client}: {e:?}"));
        }
    }

    /// lightning-liquidity has checked the promise, its expiry and the payment size against
    /// the offer; what is left is to hand out an SCID, recorded first so the dispatcher knows it.
    async fn lsps2_buy(
        &self, request_id: LSPSRequestId, client: PublicKey, offer: LSPS2OpeningFeeParams,
        payment_size_msat: Option<u64>,
    ) {
        let (Some(o), Some(handler)) = (self.lsps2_options(), self.liquidity.lsps2_service_handler()) else { return };
        let scid = self.channel_manager.get_intercept_scid();
        let random = self.keys.get_secure_random_bytes();
        let user_channel_id = u128::from_be_bytes(random[..16].try_into().unwrap_or([1; 16]));
        let sale = JitChannelRecord {
            scid,
            client_node_id: client.to_string(),
            user_channel_id,
            payment_size_msat,
            min_fee_msat: offer.min_fee_msat,
            proportional_ppm: offer.proportional,
            valid_until: offer.valid_until.to_rfc3339(),
            state: JIT_SOLD.into(),
            channel_id: None,
            opening_fee_msat: None,
            created_at: 0,
            updated_at: 0,
        };
        if let Err(e) = self.store.record_jit_sale(&sale) {
            // Unanswered, the client's request times out: better than an SCID nobody knows.
            self.lsps2_log(Level::Error, format!("cannot record a JIT sale to {client}: {e}"));
            return;
        }
        // "LSP trusts client": the funding is broadcast as usual, before the client claims.
        let answered = handler
            .invoice_parameters_generated(&client, request_id, scid, o.cltv_expiry_delta, false, user_channel_id)
            .await;
        match answered {
            Ok(()) => self.lsps2_log(Level::Info, format!("sold JIT channel scid {scid} to {client}")),
            Err(e) => self.lsps2_log(Level::Warn, format!("cannot answer buy of {client}: {e:?}")),
        }
    }

    /// The first payment for a JIT SCID arrived: fund the channel. Every way this fails ends
    /// in `channel_open_failed`, which fails the payment back so the payer may retry.
    async fn lsps2_open_channel(
        &self, client: PublicKey, amt_to_forward_msat: u64, opening_fee_msat: u64, user_channel_id: u128, scid: u64,
    ) {
        let Some(o) = self.lsps2_options() else { return };
        // lightning-liquidity may hand the event out again after a restart: open once.
        if self
            .channel_manager
            .list_channels_with_counterparty(&client)
            .iter()
            .any(|c| c.user_channel_id == user_channel_id)
        {
            return;
        }
        let opened = match params::channel_sat(o, amt_to_forward_msat) {
            None => Err(format!("{amt_to_forward_msat} msat does not fit in max_channel_sat {}", o.max_channel_sat)),
            Some(_) if self.peer_manager.peer_by_node_id(&client).is_none() => Err("client is not connected".into()),
            Some(sat) => {
                let cfg = params::channel_config(&user_config(&self.config.options), o);
                self.channel_manager
                    .create_channel(client, sat, 0, user_channel_id, None, Some(cfg))
                    .map(|_| sat)
                    .map_err(|e| format!("{e:?}"))
            }
        };
        match opened {
            Ok(sat) => {
                self.lsps2_log(
                    Level::Info,
                    format!(
                        "opening a {sat} sat JIT channel to {client} for scid {scid} (fee {opening_fee_msat} msat)"
                    ),
                );
                if let Err(e) = self.store.jit_update(scid, JIT_OPENING, None, Some(opening_fee_msat)) {
                    self.lsps2_log(Level::Warn, format!("cannot record the JIT open of scid {scid}: {e}"));
                }
            }
            Err(why) => {
                self.lsps2_log(Level::Warn, format!("cannot open the JIT channel to {client} for scid {scid}: {why}"));
                self.lsps2_open_failed(client, user_channel_id, scid).await;
            }
        }
    }

    async fn lsps2_open_failed(&self, client: PublicKey, user_channel_id: u128, scid: u64) {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return };
        if let Err(e) = handler.channel_open_failed(&client, user_channel_id).await {
            self.lsps2_log(Level::Warn, format!("cannot reset JIT scid {scid} after a failed open: {e:?}"));
        }
        let _ = self.store.jit_update(scid, JIT_FAILED, None, None);
    }

    /// An HTLC for a JIT SCID (the dispatcher decided). lightning-liquidity fails it back
    /// itself when it does not fit the offer (too small or large, offer expired, underpaid).
    pub(crate) async fn lsps2_htlc_intercepted(
        &self, scid: u64, intercept_id: InterceptId, expected_outbound_amount_msat: u64, payment_hash: PaymentHash,
    ) {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return };
        let handled = handler.htlc_intercepted(scid, intercept_id, expected_outbound_amount_msat, payment_hash).await;
        if let Err(e) = handled {
            self.lsps2_log(Level::Info, format!("HTLC for JIT scid {scid} refused: {e:?}"));
            // Failed already in most refusals; a second fail only errs, so this is a safety net.
            let _ = self.channel_manager.fail_intercepted_htlc(intercept_id);
        }
    }

    /// LDK's `ChannelReady`: for a JIT channel, lightning-liquidity forwards the waiting
    /// payment over it, less the opening fee.
    pub(crate) async fn lsps2_channel_ready(&self, user_channel_id: u128, channel_id: &ChannelId, client: &PublicKey) {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return };
        let Ok(Some(jit)) = self.store.jit_by_user_channel_id(user_channel_id) else { return };
        if let Err(e) = handler.channel_ready(user_channel_id, channel_id, client).await {
            self.lsps2_log(Level::Warn, format!("JIT channel {channel_id} ready but not forwarded: {e:?}"));
        }
        let _ = self.store.jit_update(jit.scid, JIT_READY, Some(&hexs(&channel_id.0)), None);
    }

    /// LDK's `ChannelClosed`: a JIT channel that closed before it was ready failed to open.
    pub(crate) async fn lsps2_channel_closed(&self, user_channel_id: u128, client: Option<PublicKey>) {
        let Some(client) = client else { return };
        let Ok(Some(jit)) = self.store.jit_by_user_channel_id(user_channel_id) else { return };
        if jit.state == JIT_OPENING {
            self.lsps2_open_failed(client, user_channel_id, jit.scid).await;
        }
    }

    /// LDK's `PaymentForwarded`: over a JIT channel, the skim tells lightning-liquidity the
    /// fee is paid (it then forwards any later payment in full).
    pub(crate) async fn lsps2_payment_forwarded(&self, next_channel_id: ChannelId, skimmed_fee_msat: Option<u64>) {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return };
        let Ok(Some(jit)) = self.store.jit_by_channel_id(&hexs(&next_channel_id.0)) else { return };
        let skimmed = skimmed_fee_msat.unwrap_or(0);
        if let Err(e) = handler.payment_forwarded(next_channel_id, skimmed).await {
            self.lsps2_log(Level::Warn, format!("forward over JIT channel {next_channel_id} not booked: {e:?}"));
        }
        if jit.state == JIT_READY && skimmed > 0 {
            let _ = self.store.jit_update(jit.scid, JIT_PAID, None, None);
        }
    }

    /// LDK's `HTLCHandlingFailed`: a forward over a JIT channel that failed lets the next
    /// queued payment go.
    pub(crate) async fn lsps2_htlc_handling_failed(&self, failure_type: HTLCHandlingFailureType) {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return };
        if let Err(e) = handler.htlc_handling_failed(failure_type).await {
            self.lsps2_log(Level::Warn, format!("failed forward not booked: {e:?}"));
        }
    }
}
