//! The one place engine errors become Python exceptions (classes live in lsp_node/errors.py).

use pyo3::PyErr;

pyo3::import_exception!(lsp_node.errors, ConfigError);
pyo3::import_exception!(lsp_node.errors, StorageError);
pyo3::import_exception!(lsp_node.errors, ChainSourceError);
pyo3::import_exception!(lsp_node.errors, PeerError);
pyo3::import_exception!(lsp_node.errors, ChannelError);
pyo3::import_exception!(lsp_node.errors, NoUsableChannelError);
pyo3::import_exception!(lsp_node.errors, InsufficientFundsError);
pyo3::import_exception!(lsp_node.errors, InvoiceError);
pyo3::import_exception!(lsp_node.errors, PaymentError);
pyo3::import_exception!(lsp_node.errors, DuplicatePaymentError);
pyo3::import_exception!(lsp_node.errors, AddressError);
pyo3::import_exception!(lsp_node.errors, WalletError);
pyo3::import_exception!(lsp_node.errors, NodeNotRunningError);
pyo3::import_exception!(lsp_node.errors, OnionMessageError);
pyo3::import_exception!(lsp_node.errors, InvalidArgumentError);

pub fn to_py(e: lsp_engine::Error) -> PyErr {
    use lsp_engine::Error as E;
    let msg = e.to_string();
    match e {
        E::Config(_) => ConfigError::new_err(msg),
        E::Storage(_) => StorageError::new_err(msg),
        E::ChainSource(_) => ChainSourceError::new_err(msg),
        E::Peer(_) => PeerError::new_err(msg),
        E::Channel(_) => ChannelError::new_err(msg),
        E::NoUsableChannel(_) => NoUsableChannelError::new_err(msg),
        E::InsufficientFunds(_) => InsufficientFundsError::new_err(msg),
        E::Invoice(_) => InvoiceError::new_err(msg),
        E::Payment(_) => PaymentError::new_err(msg),
        E::DuplicatePayment(_) => DuplicatePaymentError::new_err(msg),
        E::Address(_) => AddressError::new_err(msg),
        E::Wallet(_) => WalletError::new_err(msg),
        E::OnionMessage(_) => OnionMessageError::new_err(msg),
        E::NotRunning => NodeNotRunningError::new_err(msg),
        E::InvalidArgument(_) => InvalidArgumentError::new_err(msg),
    }
}
