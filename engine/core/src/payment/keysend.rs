//! Spontaneous payments (keysend): we make the preimage, so the payment hash is ours too.

use bitcoin::hashes::Hash;
use lightning::ln::channelmanager::{PaymentId, RecipientOnionFields, Retry};
use lightning::routing::router::{PaymentParameters, RouteParameters};
use lightning::sign::EntropySource;
use lightning::types::payment::{PaymentHash, PaymentPreimage};

use super::RETRY_FOR;
use crate::error::{Error, Result};
use crate::io::{now_secs, PaymentRecord, STATUS_PENDING};
use crate::node::Node;
use crate::parse::{hexs, parse_pubkey};

/// Final CLTV delta of a keysend; a little above LDK's minimum of 36 for received payments.
const KEYSEND_FINAL_CLTV: u32 = 40;

impl Node {
    /// Pay a node without an invoice (keysend); returns the payment id.
    pub fn keysend(&self, node_id: &str, amount_msat: u64) -> Result<String> {
        self.check_running()?;
        let pk = parse_pubkey(node_id)?;
        if amount_msat == 0 {
            return Err(Error::InvalidArgument("amount must be positive".into()));
        }
        let preimage = PaymentPreimage(self.core.keys.get_secure_random_bytes());
        let hash = PaymentHash(bitcoin::hashes::sha256::Hash::hash(&preimage.0).to_byte_array());
        let id = hexs(&hash.0);
        let now = now_secs();
        self.core.store.upsert_payment(&PaymentRecord {
            payment_id: id.clone(),
            payment_hash: id.clone(),
            direction: "outbound".into(),
            status: STATUS_PENDING.into(),
            amount_msat: Some(amount_msat),
            fee_msat: None,
            preimage: Some(hexs(&preimage.0)),
            bolt11: None,
            failure: None,
            created_at: now,
            updated_at: now,
        })?;
        let params = RouteParameters::from_payment_params_and_value(
            PaymentParameters::for_keysend(pk, KEYSEND_FINAL_CLTV, false),
            amount_msat,
        );
        self.core
            .channel_manager
            .send_spontaneous_payment(
                Some(preimage),
                RecipientOnionFields::spontaneous_empty(),
                PaymentId(hash.0),
                params,
                Retry::Timeout(RETRY_FOR),
            )
            .map_err(|e| Error::Payment(format!("cannot send keysend payment: {e:?}")))?;
        Ok(id)
    }
}
