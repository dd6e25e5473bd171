//! Translating LDK's events: the ones the node settles itself (funding, claims with a known
//! preimage, spendable outputs, connection requests) are handled here; the rest become
//! `NodeEvent`s, queued durably (with the payment row they change) before LDK forgets them.

use lightning::events::{
    ClosureReason, Event, FundingInfo, HTLCHandlingFailureType, PaymentFailureReason, ReplayEvent,
};
use lightning::util::logger::Level;
use lightning::util::ser::Writeable;

use crate::event::NodeEvent;
use crate::io::{now_secs, InterceptRecord, PaymentRecord, INTERCEPT_PENDING, STATUS_FAILED, STATUS_SUCCEEDED};
use crate::lsps::dispatch::{self, InterceptOwner};
use crate::node::Core;
use crate::parse::hexs;

fn closure_reason(r: &ClosureReason) -> String {
    format!("{r}")
}

fn payment_failure(reason: Option<PaymentFailureReason>) -> String {
    match reason {
        Some(r) => format!("{r:?}"),
        None => "RetriesExhausted".into(),
    }
}

impl Core {
    fn emit(&self, event: NodeEvent, payment: Option<&PaymentRecord>) -> std::result::Result<(), ReplayEvent> {
        // Not durable: ask LDK to hand us the event again rather than lose it.
        self.events.emit(event, payment).map_err(|_| ReplayEvent())
    }

    fn payment_has_status(&self, id: &str, status: &str) -> bool {
        matches!(self.store.payment(id), Ok(Some(p)) if p.status == status)
    }

    fn updated_payment(&self, id: &str, f: impl FnOnce(&mut PaymentRecord)) -> Option<PaymentRecord> {
        let mut p = self.store.payment(id).ok().flatten()?;
        f(&mut p);
        p.updated_at = now_secs();
        Some(p)
    }

    pub(crate) async fn handle_ldk_event(&self, event: Event) -> std::result::Result<(), ReplayEvent> {
        match event {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                user_channel_id,
                ..
            } => {
                // An LSPS1 order's channel is funded for the confirmation time the order promised.
                let target = self.lsps1_funding_target(user_channel_id).unwrap_or(12);
                let feerate = self.chain.feerate_sat_per_kw(target);
                let built = self.wallet.build_payment(
                    output_script.clone(),
                    Some(bitcoin::Amount::from_sat(channel_value_satoshis)),
                    feerate,
                );
                match built {
                    Ok(tx) => {
                        // An order's funding is on the order before LDK may broadcast it.
                        if let Err(e) = self.lsps1_funding_made(user_channel_id, &tx, &output_script) {
                            self.wallet.cancel(&tx);
                            return Err(e);
                        }
                        if let Err(e) = self.channel_manager.funding_transaction_generated(
                            temporary_channel_id,
                            counterparty_node_id,
                            tx.clone(),
                        ) {
                            self.wallet.cancel(&tx);
                            self.lsps1_funding_discarded(&tx.compute_txid());
                            self.logger
                                .engine(Level::Error, format!("funding of {temporary_channel_id} refused: {e:?}"));
                        }
                    }
                    Err(e) => {
                        self.logger.engine(Level::Error, format!("cannot fund channel {temporary_channel_id}: {e}"));
                        let _ = self.channel_manager.force_close_broadcasting_latest_txn(
                            &temporary_channel_id,
                            &counterparty_node_id,
                            format!("funding failed: {e}"),
                        );
                    }
                }
                Ok(())
            }
            Event::PaymentClaimable { payment_hash, amount_msat, purpose, claim_deadline, .. } => {
                match purpose.preimage() {
                    Some(preimage) => {
                        // An LSPS1 order's invoice is taken only while the order can be served.
                        if self.lsps1_claimable(&hexs(&payment_hash.0))? == Some(false) {
                            self.channel_manager.fail_htlc_backwards(&payment_hash);
                            return Ok(());
                        }
                        self.channel_manager.claim_funds(preimage);
                        Ok(())
                    }
                    None => self.emit(
                        NodeEvent::PaymentClaimable {
                            payment_hash: hexs(&payment_hash.0),
                            amount_msat,
                            claim_deadline,
                        },
                        None,
                    ),
                }
            }
            Event::PaymentClaimed { payment_hash, amount_msat, purpose, .. } => {
                let id = hexs(&payment_hash.0);
                // LDK may hand us a claim again after a restart; the store says if it is news.
                if self.payment_has_status(&id, STATUS_SUCCEEDED) {
                    return Ok(());
                }
                let now = now_secs();
                let preimage = purpose.preimage().map(|p| hexs(&p.0));
                let record = self
                    .updated_payment(&id, |p| {
                        p.status = STATUS_SUCCEEDED.into();
                        p.amount_msat = Some(amount_msat);
                        p.preimage = preimage.clone();
                    })
                    .unwrap_or(PaymentRecord {
                        payment_id: id.clone(),
                        payment_hash: id.clone(),
                        direction: "inbound".into(),
                        status: STATUS_SUCCEEDED.into(),
                        amount_msat: Some(amount_msat),
                        fee_msat: None,
                        preimage: preimage.clone(),
                        bolt11: None,
                        failure: None,
                        created_at: now,
                        updated_at: now,
                    });
                // The record's transaction also marks an LSPS1 order it pays as paid.
                self.emit(
                    NodeEvent::PaymentReceived { payment_id: id.clone(), payment_hash: id.clone(), amount_msat },
                    Some(&record),
                )?;
                self.lsps1_payment_claimed(&id);
                Ok(())
            }
            Event::PaymentSent { payment_id, payment_preimage, payment_hash, amount_msat, fee_paid_msat, .. } => {
                // No route is asked for once the preimage is known: the hold's routing ends.
                if let Some(id) = &payment_id {
                    self.router.forget(id);
                }
                let id = payment_id.map(|p| hexs(&p.0)).unwrap_or_else(|| hexs(&payment_hash.0));
                if self.payment_has_status(&id, STATUS_SUCCEEDED) {
                    return Ok(());
                }
                let record = self.updated_payment(&id, |p| {
                    p.status = STATUS_SUCCEEDED.into();
                    p.preimage = Some(hexs(&payment_preimage.0));
                    p.fee_msat = fee_paid_msat;
                    if amount_msat.is_some() {
                        p.amount_msat = amount_msat;
                    }
                    p.failure = None;
                });
                self.emit(
                    NodeEvent::PaymentSent {
                        payment_id: id,
                        payment_hash: hexs(&payment_hash.0),
                        preimage: hexs(&payment_preimage.0),
                        amount_msat,
                        fee_paid_msat,
                    },
                    record.as_ref(),
                )
            }
            Event::PaymentFailed { payment_id, payment_hash, reason } => {
                self.router.forget(&payment_id);
                let id = hexs(&payment_id.0);
                if self.payment_has_status(&id, STATUS_FAILED) {
                    return Ok(());
                }
                let why = payment_failure(reason);
                let record = self.updated_payment(&id, |p| {
                    p.status = STATUS_FAILED.into();
                    p.failure = Some(why.clone());
                });
                self.emit(
                    NodeEvent::PaymentFailed {
                        payment_id: id,
                        payment_hash: payment_hash.map(|h| hexs(&h.0)),
                        reason: why,
                    },
                    record.as_ref(),
                )
            }
            Event::PaymentForwarded {
                prev_channel_id,
                next_channel_id,
                prev_node_id,
                next_node_id,
                total_fee_earned_msat,
                skimmed_fee_msat,
                claim_from_onchain_tx,
                outbound_amount_forwarded_msat,
                ..
            } => {
                let skimmed = skimmed_fee_msat.unwrap_or(0);
                if let Some(next) = next_channel_id {
                    self.lsps2_payment_forwarded(next, skimmed).await?;
                }
                if let (Some(p), Some(n)) = (prev_channel_id, next_channel_id) {
                    self.forget_settled_intercepts(&hexs(&p.0), &hexs(&n.0));
                }
                // The skim is added to its JIT channel's total with the event (and the forward).
                let event = NodeEvent::PaymentForwarded {
                    prev_channel_id: prev_channel_id.map(|c| hexs(&c.0)),
                    next_channel_id: next_channel_id.map(|c| hexs(&c.0)),
                    prev_node_id: prev_node_id.map(|n| n.to_string()),
                    next_node_id: next_node_id.map(|n| n.to_string()),
                    fee_earned_msat: total_fee_earned_msat,
                    outbound_amount_msat: outbound_amount_forwarded_msat,
                    claim_from_onchain_tx,
                };
                self.events.emit_forward(event, skimmed).map_err(|_| ReplayEvent())
            }
            Event::HTLCHandlingFailed { prev_channel_id, failure_type, failure_reason } => {
                self.lsps2_htlc_handling_failed(failure_type.clone()).await;
                let prev = hexs(&prev_channel_id.0);
                let (mut next_node_id, mut next_channel_id, mut scid, mut payment_hash) = (None, None, None, None);
                match &failure_type {
                    HTLCHandlingFailureType::Forward { node_id, channel_id } => {
                        next_node_id = node_id.map(|n| n.to_string());
                        next_channel_id = Some(hexs(&channel_id.0));
                    }
                    HTLCHandlingFailureType::InvalidForward { requested_forward_scid }
                    | HTLCHandlingFailureType::UnknownNextHop { requested_forward_scid } => {
                        scid = Some(*requested_forward_scid);
                    }
                    HTLCHandlingFailureType::Receive { payment_hash: h } => payment_hash = Some(hexs(&h.0)),
                    HTLCHandlingFailureType::InvalidOnion => {}
                }
                let matched = self.match_failed_intercept(&prev, next_channel_id.as_deref(), scid);
                let intercept_id = matched.as_ref().map(|r| r.intercept_id.clone());
                if let Some(r) = matched {
                    payment_hash = payment_hash.or(Some(r.payment_hash));
                }
                let emitted = self.emit(
                    NodeEvent::HtlcHandlingFailed {
                        prev_channel_id: prev,
                        failure_type: format!("{failure_type:?}"),
                        reason: failure_reason.map(|r| format!("{r:?}")),
                        next_node_id,
                        next_channel_id,
                        requested_next_hop_scid: scid,
                        payment_hash,
                        intercept_id: intercept_id.clone(),
                    },
                    None,
                );
                // Forgotten only once the event carrying the match is durable.
                if let (Ok(()), Some(id)) = (&emitted, intercept_id) {
                    let _ = self.store.forget_intercept(&id);
                }
                emitted
            }
            Event::HTLCIntercepted {
                intercept_id,
                requested_next_hop_scid,
                payment_hash,
                inbound_amount_msat,
                expected_outbound_amount_msat,
            } => {
                // The one dispatcher for intercepted HTLCs (see `lsps::dispatch`).
                let lsps2_on = self.liquidity.lsps2_service_handler().is_some();
                let application_on = self.config.options.accept_intercept_htlcs;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                match dispatch::owner(&self.store, requested_next_hop_scid, lsps2_on, application_on, now) {
                    Err(e) => {
                        self.logger.engine(Level::Error, format!("cannot look up an intercept SCID: {e}; will retry"));
                        return Err(ReplayEvent());
                    }
                    Ok(InterceptOwner::Lsps2) => {
                        let (scid, amount) = (requested_next_hop_scid, expected_outbound_amount_msat);
                        return self.lsps2_htlc_intercepted(scid, intercept_id, amount, payment_hash).await;
                    }
                    Ok(InterceptOwner::Fail(why)) => {
                        self.logger.engine(
                            Level::Info,
                            format!("HTLC for intercept scid {requested_next_hop_scid} failed back: {why}"),
                        );
                        let _ = self.channel_manager.fail_intercepted_htlc(intercept_id);
                        return Ok(());
                    }
                    Ok(InterceptOwner::Application) => {}
                }
                // Looked up now, while the HTLC is surely pending, so the handler gets the
                // sender and expiry with the event instead of racing the channel state.
                let inbound = self.inbound_side(&payment_hash, inbound_amount_msat);
                let record = InterceptRecord {
                    intercept_id: hexs(&intercept_id.0),
                    requested_next_hop_scid,
                    payment_hash: hexs(&payment_hash.0),
                    prev_channel_id: inbound.map(|i| hexs(&i.channel_id.0)),
                    prev_node_id: inbound.map(|i| i.prev_node_id.to_string()),
                    inbound_amount_msat,
                    expected_outbound_amount_msat,
                    inbound_cltv_expiry: inbound.map(|i| i.cltv_expiry),
                    next_channel_id: None,
                    state: INTERCEPT_PENDING.into(),
                };
                // Recorded before the event, so the record exists whenever the event does.
                if let Err(e) = self.store.record_intercept(&record) {
                    self.logger.engine(Level::Error, format!("cannot record an intercepted HTLC: {e}; will retry"));
                    return Err(ReplayEvent());
                }
                self.emit(
                    NodeEvent::HtlcIntercepted {
                        intercept_id: hexs(&intercept_id.0),
                        requested_next_hop_scid,
                        payment_hash: hexs(&payment_hash.0),
                        inbound_amount_msat,
                        expected_outbound_amount_msat,
                        prev_node_id: inbound.map(|i| i.prev_node_id.to_string()),
                        inbound_cltv_expiry: inbound.map(|i| i.cltv_expiry),
                    },
                    None,
                )
            }
            Event::SpendableOutputs { outputs, channel_id } => {
                self.sweeper.track_spendable_outputs(outputs, channel_id, false, None).map_err(|_| {
                    self.logger.engine(Level::Error, "cannot track spendable outputs; will retry".into());
                    ReplayEvent()
                })
            }
            Event::ChannelPending { channel_id, user_channel_id, counterparty_node_id, funding_txo, .. } => {
                let funding_txo = format!("{}:{}", funding_txo.txid, funding_txo.vout);
                self.lsps1_channel_pending(user_channel_id, &hexs(&channel_id.0), &funding_txo)?;
                self.emit(
                    NodeEvent::ChannelPending {
                        channel_id: hexs(&channel_id.0),
                        user_channel_id: user_channel_id.to_string(),
                        counterparty_node_id: counterparty_node_id.to_string(),
                        funding_txo,
                    },
                    None,
                )
            }
            Event::ChannelReady { channel_id, user_channel_id, counterparty_node_id, .. } => {
                self.lsps2_channel_ready(user_channel_id, &channel_id, &counterparty_node_id).await?;
                self.emit(
                    NodeEvent::ChannelReady {
                        channel_id: hexs(&channel_id.0),
                        user_channel_id: user_channel_id.to_string(),
                        counterparty_node_id: counterparty_node_id.to_string(),
                    },
                    None,
                )
            }
            Event::ChannelClosed {
                channel_id,
                user_channel_id,
                reason,
                counterparty_node_id,
                channel_capacity_sats,
                ..
            } => {
                // Funded: LDK holds a monitor for it, made when the client's `funding_signed` came,
                // right before the funding is broadcast. `channel_funding_txo` is no proof: it is
                // set once we hand LDK the transaction, before the client has signed anything.
                let funded = self.chain_monitor.get_monitor(channel_id).is_ok();
                let funded_sat = funded.then(|| channel_capacity_sats.unwrap_or(0));
                self.lsps2_channel_closed(user_channel_id, counterparty_node_id, funded_sat).await?;
                // Counted whenever the order is still unfunded (no `ChannelPending` was handled).
                self.lsps1_channel_closed(user_channel_id, &closure_reason(&reason))?;
                self.emit(
                    NodeEvent::ChannelClosed {
                        channel_id: hexs(&channel_id.0),
                        user_channel_id: user_channel_id.to_string(),
                        counterparty_node_id: counterparty_node_id.map(|n| n.to_string()),
                        reason: closure_reason(&reason),
                    },
                    None,
                )
            }
            Event::DiscardFunding { funding_info, .. } => {
                let txid = match funding_info {
                    FundingInfo::Tx { transaction } => {
                        self.wallet.cancel(&transaction);
                        transaction.compute_txid()
                    }
                    FundingInfo::OutPoint { outpoint } => outpoint.txid,
                };
                // Never broadcast: an LSPS1 order it was built for may be opened again.
                if self.lsps1_funding_discarded(&txid) {
                    Ok(())
                } else {
                    Err(ReplayEvent())
                }
            }
            Event::ConnectionNeeded { node_id, addresses } => {
                // Dialled on the dialler task with a deadline: the addresses may come from
                // anyone's node announcement (a reply path names its first hop), and waiting
                // here would stop every other event until the dial gave up.
                self.request_dial(node_id, addresses);
                Ok(())
            }
            Event::OpenChannelRequest {
                temporary_channel_id,
                counterparty_node_id,
                funding_satoshis,
                channel_negotiation_type,
                channel_type,
                ..
            } => {
                self.decide_inbound_channel(
                    temporary_channel_id,
                    counterparty_node_id,
                    funding_satoshis,
                    channel_negotiation_type,
                    &channel_type,
                );
                Ok(())
            }
            // Forwarded messages are intercepted by the guard, which knows their sender; what
            // still arrives here was generated by LDK itself.
            Event::OnionMessageIntercepted { peer_node_id, message } => self.emit(
                NodeEvent::OnionMessageIntercepted {
                    peer_node_id: peer_node_id.to_string(),
                    message: hexs(&message.encode()),
                    prev_node_id: None,
                },
                None,
            ),
            Event::OnionMessagePeerConnected { peer_node_id } => {
                self.emit(NodeEvent::OnionMessagePeerConnected { peer_node_id: peer_node_id.to_string() }, None)
            }
            Event::PersistStaticInvoice {
                invoice,
                invoice_request_path,
                invoice_slot,
                recipient_id,
                invoice_persisted_path,
            } => self.persist_static_invoice(
                invoice,
                invoice_request_path,
                invoice_slot,
                recipient_id,
                invoice_persisted_path,
            ),
            Event::StaticInvoiceRequested { recipient_id, invoice_slot, reply_path, invoice_request } => {
                self.static_invoice_requested(recipient_id, invoice_slot, reply_path, invoice_request)
            }
            Event::BumpTransaction(_) => {
                // Only anchor channels ask for fee bumps, and this node negotiates none.
                self.logger.engine(Level::Warn, "unexpected BumpTransaction event ignored".into());
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
