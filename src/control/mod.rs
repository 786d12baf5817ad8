//! The control service: installed agents run as child processes.

pub mod process;
