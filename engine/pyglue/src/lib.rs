//! lsp_node._ldk: the compiled half of lsp_node. Thin glue only; logic lives in lsp_engine and
//! regtest_chain, exceptions in lsp_node/errors.py.

use pyo3::prelude::*;

mod chain;
mod errors;
mod events;
mod lsps;
mod node;
mod types;

#[pymodule]
fn _ldk(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<node::PyNode>()?;
    m.add_function(wrap_pyfunction!(node::verify_message, m)?)?;
    m.add_function(wrap_pyfunction!(node::lsps5_verify, m)?)?;
    types::register(m)?;
    lsps::register(m)?;
    events::register(m)?;
    chain::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
