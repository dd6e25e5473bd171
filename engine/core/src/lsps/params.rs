//! The operator's LSPS2 options turned into what lightning-liquidity and LDK take: the fee
//! menu answered to `lsps2.get_info`, the size of a JIT channel, its per-channel LDK config.

use std::time::Duration;

use lightning::util::config::UserConfig;
use lightning_liquidity::lsps0::ser::LSPSDateTime;
use lightning_liquidity::lsps2::msgs::LSPS2RawOpeningFeeParams;

use crate::config::Lsps2Options;
use crate::error::{Error, Result};

/// LDK refuses a `to_self_delay` below 144 blocks (BREAKDOWN_TIMEOUT) for our own side.
const MIN_TO_SELF_DELAY: u32 = 144;
/// Satoshis a JIT channel needs beyond the payment and margin for commitment and HTLC fees.
const CHANNEL_FEE_BUFFER_SAT: u64 = 10_000;
/// The smallest CLTV delta for the JIT hop: LDK's own minimum for a forwarding hop is 36
/// blocks (MIN_CLTV_EXPIRY_DELTA), with a margin for the claim to confirm.
const MIN_CLTV_EXPIRY_DELTA: u32 = 48;

/// Refuse terms that could never work, at start-up rather than at the first client.
pub(crate) fn check(o: &Lsps2Options) -> Result<()> {
    let bad = |why: String| Err(Error::Config(format!("lsps2: {why}")));
    if o.min_payment_size_msat == 0 || o.min_payment_size_msat > o.max_payment_size_msat {
        return bad(format!(
            "min_payment_size_msat {} must be above 0 and at most max_payment_size_msat {}",
            o.min_payment_size_msat, o.max_payment_size_msat
        ));
    }
    if o.min_fee_msat >= o.min_payment_size_msat {
        return bad(format!(
            "min_fee_msat {} must be below min_payment_size_msat {}: the fee is taken from the payment",
            o.min_fee_msat, o.min_payment_size_msat
        ));
    }
    if o.proportional_ppm >= 1_000_000 {
        return bad(format!("proportional_ppm {} must be below 1000000", o.proportional_ppm));
    }
    // The largest payment plus the margin must fit with room to spare: LDK keeps a reserve
    // and fee buffer out of what the LSP's side can send, so a channel exactly the payment's
    // size could not carry it.
    let largest = o.max_payment_size_msat.div_ceil(1000).saturating_add(o.channel_over_payment_sat);
    let room = room_sat(largest);
    if largest.saturating_add(room) > o.max_channel_sat {
        return bad(format!(
            "max_payment_size_msat {} plus channel_over_payment_sat {} and a margin of {room} sat (1% and \
             {CHANNEL_FEE_BUFFER_SAT} sat for fees) does not fit in a channel of max_channel_sat {}",
            o.max_payment_size_msat, o.channel_over_payment_sat, o.max_channel_sat
        ));
    }
    if o.cltv_expiry_delta < MIN_CLTV_EXPIRY_DELTA {
        return bad(format!(
            "cltv_expiry_delta {} must be at least {MIN_CLTV_EXPIRY_DELTA}: the LSP needs the blocks to claim on-chain",
            o.cltv_expiry_delta
        ));
    }
    if o.max_client_to_self_delay < MIN_TO_SELF_DELAY {
        return bad(format!(
            "max_client_to_self_delay {} must be at least {MIN_TO_SELF_DELAY}",
            o.max_client_to_self_delay
        ));
    }
    if o.valid_for_secs < 60 {
        return bad(format!("valid_for_secs {} leaves a client no time to buy (at least 60)", o.valid_for_secs));
    }
    Ok(())
}

/// The one fee offer answered to `lsps2.get_info` at `now` (since the Unix epoch);
/// lightning-liquidity signs it with the promise secret.
pub(crate) fn fee_menu(o: &Lsps2Options, now: Duration) -> Vec<LSPS2RawOpeningFeeParams> {
    let valid_until = now + Duration::from_secs(o.valid_for_secs.into());
    vec![LSPS2RawOpeningFeeParams {
        min_fee_msat: o.min_fee_msat,
        proportional: o.proportional_ppm,
        // Whole seconds: the promise covers the RFC 3339 text, keep it short and stable.
        valid_until: LSPSDateTime::new_from_duration_since_epoch(Duration::from_secs(valid_until.as_secs())),
        min_lifetime: o.min_lifetime_blocks,
        max_client_to_self_delay: o.max_client_to_self_delay,
        min_payment_size_msat: o.min_payment_size_msat,
        max_payment_size_msat: o.max_payment_size_msat,
    }]
}

/// The room a channel of `sat` (payment and margin) needs on top for what LDK keeps out of
/// the LSP's sendable balance: 1% (covers the channel reserve) and a fixed fee buffer (the
/// commitment and HTLC fees the funder pays).
fn room_sat(sat: u64) -> u64 {
    sat.div_ceil(100).saturating_add(CHANNEL_FEE_BUFFER_SAT)
}

/// Satoshis to fund a JIT channel that must carry `amt_to_forward_msat`: the payment rounded
/// up, plus the operator's margin, plus the room `check` assumed (`room_sat`). None if that
/// passes `max_channel_sat`: a channel cut down to the cap could leave the LSP short of the
/// reserve and fees it needs to forward the payment, so the open is refused instead (the
/// start-up check makes every payment the offer allows fit; only a config changed since the
/// sale gets here).
pub(crate) fn channel_sat(o: &Lsps2Options, amt_to_forward_msat: u64) -> Option<u64> {
    let wanted = amt_to_forward_msat.div_ceil(1000).saturating_add(o.channel_over_payment_sat);
    let sat = wanted.saturating_add(room_sat(wanted));
    (sat <= o.max_channel_sat).then_some(sat)
}

/// LDK's config for one JIT channel: no forwarding fee (the opening fee pays), our
/// `to_self_delay` within the promised maximum, and zero-conf from our side only if the
/// operator allows it (the client decides for its side; ldk-node trusts its LSP).
pub(crate) fn channel_config(base: &UserConfig, o: &Lsps2Options) -> UserConfig {
    let mut c = base.clone();
    c.channel_config.forwarding_fee_base_msat = 0;
    c.channel_config.forwarding_fee_proportional_millionths = 0;
    let delay = u32::from(c.channel_handshake_config.our_to_self_delay).min(o.max_client_to_self_delay);
    c.channel_handshake_config.our_to_self_delay = delay.max(MIN_TO_SELF_DELAY) as u16;
    // The client has no on-chain funds for an anchor reserve: static_remote_key only.
    c.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx = false;
    c.channel_handshake_config.announce_for_forwarding = false;
    c.channel_handshake_limits.trust_own_funding_0conf = o.zero_conf;
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fee_menu_carries_the_operators_terms() {
        let o =
            Lsps2Options { min_fee_msat: 1_500, proportional_ppm: 4_000, valid_for_secs: 600, ..Default::default() };
        let menu = fee_menu(&o, Duration::from_millis(1_700_000_000_250));
        assert_eq!(menu.len(), 1);
        let p = &menu[0];
        assert_eq!((p.min_fee_msat, p.proportional), (1_500, 4_000));
        assert_eq!(p.valid_until.to_rfc3339(), "2023-11-14T22:23:20+00:00");
        assert_eq!((p.min_lifetime, p.max_client_to_self_delay), (o.min_lifetime_blocks, o.max_client_to_self_delay));
        assert_eq!(
            (p.min_payment_size_msat, p.max_payment_size_msat),
            (o.min_payment_size_msat, o.max_payment_size_msat)
        );
    }

    #[test]
    fn a_channel_is_the_payment_rounded_up_plus_the_margin_and_room_or_refused_past_the_cap() {
        let o = Lsps2Options { channel_over_payment_sat: 50_000, max_channel_sat: 1_000_000, ..Default::default() };
        // 100_001 sat + 50_000 margin = 150_001; + 1% (1_501) + 10_000 for the reserve and fees.
        assert_eq!(channel_sat(&o, 100_000_001), Some(161_502));
        // The largest payment `check` accepts for this cap gets exactly the room it assumed.
        let fits = Lsps2Options { max_payment_size_msat: 895_000_000, ..o };
        assert!(check(&fits).is_ok());
        assert_eq!(channel_sat(&o, 895_000_000), Some(945_000 + 9_450 + 10_000));
        // 930_198 + 50_000 + 9_802 + 10_000 is the cap exactly; one msat more is refused, not
        // cut down to the cap.
        assert_eq!(channel_sat(&o, 930_198_000), Some(1_000_000));
        assert_eq!(channel_sat(&o, 930_198_001), None);
        assert_eq!(channel_sat(&o, 990_000_000), None);
        assert_eq!(channel_sat(&o, 1_000_000_001), None);
    }

    #[test]
    fn the_jit_channel_config_has_no_fee_no_anchors_and_the_operators_zero_conf() {
        let mut base = UserConfig::default();
        base.channel_config.forwarding_fee_base_msat = 1_000;
        base.channel_handshake_config.our_to_self_delay = 1_000;
        base.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx = true;
        let o = Lsps2Options { max_client_to_self_delay: 400, zero_conf: false, ..Default::default() };
        let c = channel_config(&base, &o);
        assert_eq!(c.channel_config.forwarding_fee_base_msat, 0);
        assert_eq!(c.channel_config.forwarding_fee_proportional_millionths, 0);
        assert_eq!(c.channel_handshake_config.our_to_self_delay, 400);
        assert!(!c.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx);
        assert!(!c.channel_handshake_limits.trust_own_funding_0conf);
        assert!(channel_config(&base, &Lsps2Options::default()).channel_handshake_limits.trust_own_funding_0conf);
    }

    #[test]
    fn impossible_terms_are_refused_with_the_key_named() {
        assert!(check(&Lsps2Options::default()).is_ok());
        assert!(
            check(&Lsps2Options { max_channel_sat: 10_212_000, cltv_expiry_delta: 48, ..Default::default() }).is_ok()
        );
        let cases = [
            (Lsps2Options { min_payment_size_msat: 0, ..Default::default() }, "min_payment_size_msat"),
            (Lsps2Options { min_fee_msat: 10_000_000, ..Default::default() }, "min_fee_msat"),
            (Lsps2Options { proportional_ppm: 1_000_000, ..Default::default() }, "proportional_ppm"),
            (Lsps2Options { max_channel_sat: 1_000, ..Default::default() }, "max_channel_sat"),
            // 10_000_000 sat payment + 100_000 margin + 1% + the fee buffer passes 10_150_000.
            (Lsps2Options { max_channel_sat: 10_150_000, ..Default::default() }, "max_channel_sat"),
            (Lsps2Options { cltv_expiry_delta: 47, ..Default::default() }, "cltv_expiry_delta"),
            (Lsps2Options { max_client_to_self_delay: 100, ..Default::default() }, "max_client_to_self_delay"),
            (Lsps2Options { valid_for_secs: 5, ..Default::default() }, "valid_for_secs"),
        ];
        for (o, key) in cases {
            let err = check(&o).unwrap_err().to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }
}
