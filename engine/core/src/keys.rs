//! LDK's keys with one change: scripts that receive channel funds on a close pay the BDK wallet,
//! so a cooperative close lands where the wallet's balance can see it.

use std::sync::Arc;

use bitcoin::ScriptBuf;
use lightning::ln::script::ShutdownScript;
use lightning::sign::{InMemorySigner, KeysManager, SignerProvider};

use crate::wallet::OnchainWallet;

pub struct WalletKeys {
    pub keys: Arc<KeysManager>,
    pub wallet: Arc<OnchainWallet>,
}

impl SignerProvider for WalletKeys {
    type EcdsaSigner = InMemorySigner;

    fn generate_channel_keys_id(&self, inbound: bool, user_channel_id: u128) -> [u8; 32] {
        self.keys.generate_channel_keys_id(inbound, user_channel_id)
    }

    fn derive_channel_signer(&self, channel_keys_id: [u8; 32]) -> InMemorySigner {
        self.keys.derive_channel_signer(channel_keys_id)
    }

    fn get_destination_script(&self, _channel_keys_id: [u8; 32]) -> Result<ScriptBuf, ()> {
        self.wallet.fresh_script()
    }

    fn get_shutdown_scriptpubkey(&self) -> Result<ShutdownScript, ()> {
        let script = self.wallet.fresh_script()?;
        ShutdownScript::try_from(script).map_err(|_| ())
    }
}
