//! The control service: installed agents run as child processes.

pub mod isolation;
pub mod parent;
pub mod process;
pub mod pylog;
pub mod restart;
