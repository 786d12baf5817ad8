//! VIP, the ZeroMQ message bus of Eclipse VOLTTRON, as the Python agents of VOLTTRON 11
//! speak it. For now only its socket-free codec:
//!
//! | module     | what |
//! |------------|------|
//! | `frame`    | VIP multipart messages as bytes: parse what a ROUTER socket receives, build what it sends, error frames |
//! | `json`     | JSON as Python's `json` module reads and writes it (`NaN`, wide integers, `ensure_ascii`), latin-1 text, the client's decoding of every frame |
//! | `jsonrpc`  | VOLTTRON's JSON-RPC 2.0 over the `RPC` subsystem: requests, responses, batches, `params` shapes, error objects |
//!
//! Nothing here touches a socket; every function is pure and total over its input (no
//! panic on any bytes).

pub(crate) mod frame;
pub(crate) mod json;
pub(crate) mod jsonrpc;
