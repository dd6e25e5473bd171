//! The LSPS1 service's terms and answers, without any state: the operator's options checked
//! and answered to `get_info`, an order judged against them, its fee, the error codes, and a
//! stored order as bLIP-51 answers it.

use std::str::FromStr;
use std::time::Duration;

use bitcoin::{Address, FeeRate, OutPoint};
use lightning_invoice::Bolt11Invoice;
use lightning_liquidity::lsps0::ser::{LSPSDateTime, LSPSResponseError};
use lightning_liquidity::lsps1::msgs::{
    LSPS1Bolt11PaymentInfo, LSPS1ChannelInfo, LSPS1CreateOrderResponse, LSPS1OnchainPaymentInfo, LSPS1Options,
    LSPS1OrderId, LSPS1OrderParams, LSPS1OrderState, LSPS1PaymentInfo, LSPS1PaymentState,
};

use crate::config::Lsps1Options;
use crate::error::{Error, Result};
use crate::io::{Lsps1OrderRecord, LSPS1_COMPLETED, LSPS1_CREATED, LSPS1_EXPECT_PAYMENT, LSPS1_PAID};

/// JSON-RPC: the params are not what the method takes.
pub(crate) const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC: our side failed (store, invoice).
pub(crate) const INTERNAL_ERROR: i32 = -32603;
/// bLIP-51 `create_order`: the order is outside the options `get_info` answered.
pub(crate) const OPTION_MISMATCH: i32 = 100;
/// LSPS0 `client_rejected`, which bLIP-51's `create_order` names: the LSP will not take this
/// client's order now (too many unpaid, no funds).
pub(crate) const CLIENT_REJECTED: i32 = 1;
/// bLIP-51 `get_order`: no such order (of this client).
pub(crate) const NOT_FOUND: i32 = 101;
/// The longest `token` taken: bLIP-51 mirrors it in every answer, and an answer must fit one
/// Lightning message (65,535 bytes).
pub(crate) const MAX_TOKEN_BYTES: usize = 512;

/// The LSP asks no confirmations of its own before `channel_ready`: the client sets the depth
/// in its `accept_channel` (ldk-node trusts its LSP for zero-conf).
pub(crate) const MIN_REQUIRED_CONFIRMATIONS: u16 = 0;
/// The most confirmations a client may ask for: more only delays its channel.
pub(crate) const MAX_REQUIRED_CONFIRMATIONS: u16 = 6;
/// The funding is published at the fee for confirmation within this many blocks.
pub(crate) const MIN_FUNDING_CONFIRMS_WITHIN: u16 = 6;
/// The funding transaction's size the wallet must hold fees for beyond the channel: room for
/// several inputs, priced at the fee rate for the order's confirmation target.
pub(crate) const FUNDING_VBYTES_MARGIN: u64 = 1_000;
/// The most confirmations an on-chain payment may be asked to wait for: a day of blocks.
pub(crate) const MAX_ONCHAIN_CONFIRMATIONS: u16 = 144;
/// Largest channel a peer without `option_support_large_channel` accepts.
pub(crate) const MAX_CHANNEL_SAT: u64 = 16_777_215;

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
    if o.min_onchain_payment_confirmations == 0 || o.min_onchain_payment_confirmations > MAX_ONCHAIN_CONFIRMATIONS {
        return bad(format!(
            "min_onchain_payment_confirmations {} must be 1..={MAX_ONCHAIN_CONFIRMATIONS} (0-conf is not offered)",
            o.min_onchain_payment_confirmations
        ));
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

/// An error answer; bLIP-51's `data` names the property at fault and says why.
pub(crate) fn error(code: i32, message: impl Into<String>, property: Option<&str>) -> LSPSResponseError {
    let message = message.into();
    let data = property.map(|p| serde_json::json!({ "property": p, "message": message }).to_string());
    LSPSResponseError { code, message, data }
}

/// The params could not be read. The parser's own text is never answered: it may quote the
/// peer's input back at any length.
pub(crate) fn invalid_params() -> LSPSResponseError {
    error(INVALID_PARAMS, "invalid params", None)
}

/// The confirmation target the funding of an order is published for: what the client asked
/// (never below `MIN_FUNDING_CONFIRMS_WITHIN`, refused earlier), no slower than the node's usual 12.
pub(crate) fn funding_target(p: &LSPS1OrderParams) -> u16 {
    p.funding_confirms_within_blocks.clamp(MIN_FUNDING_CONFIRMS_WITHIN, 12)
}

/// The fee to hold back for an order's funding transaction at `sat_per_kw`.
pub(crate) fn funding_fee_sat(sat_per_kw: u32) -> u64 {
    // 1 vbyte = 4 weight units.
    u64::from(sat_per_kw).saturating_mul(FUNDING_VBYTES_MARGIN * 4).div_ceil(1_000)
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
    let unchecked = |a: &str, what: &str| {
        Address::from_str(a).map(|a| a.assume_checked()).map_err(|e| format!("stored {what}: {e}"))
    };
    // One payment state for the order, answered for each way to pay: once paid either way, the
    // other is PAID too, so the client pays no second time (the LSP refuses it anyway).
    let onchain = match &r.onchain {
        None => None,
        Some(o) => Some(LSPS1OnchainPaymentInfo {
            state: state.clone(),
            expires_at: datetime(r.expires_at),
            fee_total_sat: r.fee_sat,
            order_total_sat: r.total_sat,
            address: unchecked(&o.address, "address")?,
            min_onchain_payment_confirmations: Some(o.min_confirmations),
            min_fee_for_0conf: FeeRate::from_sat_per_kwu(o.min_fee_for_0conf_kwu),
            refund_onchain_address: match &r.refund_onchain_address {
                Some(a) => Some(unchecked(a, "refund address")?),
                None => None,
            },
        }),
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
            onchain,
        },
        channel,
    })
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;
    use lightning_liquidity::lsps1::msgs::LSPS1GetInfoResponse;
    use serde_json::Value;

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
            (
                Lsps1Options { min_onchain_payment_confirmations: 0, ..Default::default() },
                "min_onchain_payment_confirmations",
            ),
            (
                Lsps1Options { min_onchain_payment_confirmations: 145, ..Default::default() },
                "min_onchain_payment_confirmations",
            ),
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

    /// A stored order of 200,000 sat, unpaid, created at 1,000 and expiring at 2,000.
    fn stored_order(p: &LSPS1OrderParams) -> Lsps1OrderRecord {
        Lsps1OrderRecord {
            order_id: "ab".repeat(16),
            client_node_id: "02aa".into(),
            params: serde_json::to_string(p).unwrap(),
            lsp_balance_sat: 200_000,
            client_balance_sat: 0,
            user_channel_id: 1,
            state: LSPS1_CREATED.into(),
            payment_state: LSPS1_EXPECT_PAYMENT.into(),
            invoice: test_invoice(),
            payment_hash: "00".into(),
            fee_sat: 4_000,
            total_sat: 4_000,
            channel_id: None,
            funding_outpoint: None,
            funded_at: None,
            created_at: 1_000,
            expires_at: 2_000,
            updated_at: 1_000,
            refund_onchain_address: None,
            open_attempts: 0,
            last_error: None,
            next_attempt_at: 0,
            claim_approved_at: None,
            funding_made: None,
            onchain: None,
            onchain_received_sat: 0,
            onchain_outpoints: None,
            paid_by: None,
        }
    }

    #[test]
    fn a_stored_order_is_answered_with_its_params_verbatim_and_its_state_at_the_time() {
        let p = params(200_000, 0, 1_000);
        let mut r = stored_order(&p);
        let a = order_response(&r, 1_500).unwrap();
        assert!(a.payment.onchain.is_none(), "no address: BOLT11 only");
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

    #[test]
    fn an_order_offered_on_chain_answers_its_address_confirmations_and_one_payment_state() {
        let address = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        let mut r = Lsps1OrderRecord {
            order_id: "cd".repeat(16),
            refund_onchain_address: Some(address.into()),
            onchain: Some(crate::io::Lsps1OnchainTerms {
                address: address.into(),
                min_confirmations: 3,
                min_fee_for_0conf_kwu: 2_500,
            }),
            ..stored_order(&params(200_000, 0, 1_000))
        };
        let v = serde_json::to_value(order_response(&r, 1_500).unwrap()).unwrap();
        let onchain = &v["payment"]["onchain"];
        assert_eq!(onchain["address"], address);
        assert_eq!(onchain["order_total_sat"], "4000");
        assert_eq!(onchain["fee_total_sat"], "4000");
        assert_eq!(onchain["min_onchain_payment_confirmations"], 3);
        assert_eq!(onchain["min_fee_for_0conf"], 2_500);
        assert_eq!(onchain["state"], "EXPECT_PAYMENT");
        assert_eq!(onchain["expires_at"], v["payment"]["bolt11"]["expires_at"]);
        assert_eq!(onchain["refund_onchain_address"], address);
        // What ldk-node 0.7.1 reads back: lightning-liquidity's own type.
        let back: LSPS1CreateOrderResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back.payment.onchain.unwrap().min_onchain_payment_confirmations, Some(3));
        // Paid on chain: both ways read PAID, so no second payment is asked for.
        r.payment_state = LSPS1_PAID.into();
        r.paid_by = Some(crate::io::LSPS1_BY_ONCHAIN.into());
        let a = order_response(&r, 1_500).unwrap();
        assert_eq!(a.payment.onchain.unwrap().state, LSPS1PaymentState::Paid);
        assert_eq!(a.payment.bolt11.unwrap().state, LSPS1PaymentState::Paid);
    }
}
