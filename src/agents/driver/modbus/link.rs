//! The TCP connection to one device, on tokio-modbus, and what its failures mean.
//!
//! | event | result | connection |
//! |-------|--------|------------|
//! | connect refused or failed | [`DriverError::Connection`] | none; the next request connects again |
//! | no connection and answer within the device's `timeout` (one deadline for the connect, if one is needed, and the request) | [`DriverError::Timeout`] | dropped (a late answer must not be taken for the next one's) |
//! | the socket fails or closes | [`DriverError::Connection`] | dropped |
//! | a Modbus exception response | [`DriverError::Refused`] with its name (`Illegal data address`) and code | kept |
//! | an answer that does not match the request | [`DriverError::Protocol`] | dropped |

use std::time::Duration;

use tokio::time::error::Elapsed;
use tokio::time::{Instant, timeout_at};
use tokio_modbus::client::{Context, Reader, Writer, tcp};
use tokio_modbus::{ExceptionCode, Slave};

use super::super::interface::DriverError;
use super::config::ModbusConfig;
use super::point::Table;

/// One device's connection, made on first use and after a failure.
pub struct Link {
    config: ModbusConfig,
    timeout: Duration,
    context: Option<Context>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field(
                "device",
                &format_args!("{}:{}", self.config.host, self.config.port),
            )
            .field("connected", &self.context.is_some())
            .finish()
    }
}

/// What a request asks for, in error messages.
fn describe(what: &str, table: Table, start: u16, count: u16) -> String {
    match count {
        1 => format!("{what} {} {start}", table.name()),
        _ => format!(
            "{what} {}s {start}..={}",
            table.name(),
            u32::from(start) + u32::from(count) - 1
        ),
    }
}

fn refused(e: ExceptionCode, request: &str) -> DriverError {
    DriverError::Refused(format!("{e} (exception {:#04x}) to {request}", u8::from(e)))
}

impl Link {
    /// A link to the device of `config`; nothing is connected yet.
    pub fn new(config: ModbusConfig, timeout: Duration) -> Link {
        Link {
            config,
            timeout,
            context: None,
        }
    }

    /// The connection, made first (by `deadline`) if there is none.
    async fn context(&mut self, deadline: Instant) -> Result<&mut Context, DriverError> {
        let context = match self.context.take() {
            Some(context) => context,
            None => {
                let addr = timeout_at(deadline, self.config.socket_addr())
                    .await
                    .map_err(|_| DriverError::Timeout(self.timeout))??;
                let slave = Slave(self.config.slave);
                timeout_at(deadline, tcp::connect_slave(addr, slave))
                    .await
                    .map_err(|_| DriverError::Timeout(self.timeout))?
                    .map_err(|e| DriverError::Connection(format!("connect to {addr}: {e}")))?
            }
        };
        Ok(self.context.insert(context))
    }

    /// The result of one request that ran by the device's deadline, its failures mapped
    /// (see the [module docs](self)).
    fn settle<T>(
        &mut self,
        what: &str,
        outcome: Result<tokio_modbus::Result<T>, Elapsed>,
    ) -> Result<T, DriverError> {
        match outcome {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(exception))) => Err(refused(exception, what)),
            Ok(Err(tokio_modbus::Error::Transport(e))) => {
                self.context = None;
                Err(DriverError::Connection(format!("{what}: {e}")))
            }
            Ok(Err(tokio_modbus::Error::Protocol(e))) => {
                self.context = None;
                Err(DriverError::Protocol(format!("{what}: {e}")))
            }
            Err(_) => {
                self.context = None;
                Err(DriverError::Timeout(self.timeout))
            }
        }
    }

    /// Reads `count` registers from `start` of a register table.
    pub async fn read_registers(
        &mut self,
        table: Table,
        start: u16,
        count: u16,
    ) -> Result<Vec<u16>, DriverError> {
        let what = describe("read", table, start, count);
        let deadline = Instant::now() + self.timeout;
        let c = self.context(deadline).await?;
        let outcome = match table {
            Table::Holding => timeout_at(deadline, c.read_holding_registers(start, count)).await,
            _ => timeout_at(deadline, c.read_input_registers(start, count)).await,
        };
        let words = self.settle(&what, outcome)?;
        check_length(words, &what, count)
    }

    /// Reads `count` bits from `start` of a bit table.
    pub async fn read_bits(
        &mut self,
        table: Table,
        start: u16,
        count: u16,
    ) -> Result<Vec<bool>, DriverError> {
        let what = describe("read", table, start, count);
        let deadline = Instant::now() + self.timeout;
        let c = self.context(deadline).await?;
        let outcome = match table {
            Table::Coil => timeout_at(deadline, c.read_coils(start, count)).await,
            _ => timeout_at(deadline, c.read_discrete_inputs(start, count)).await,
        };
        let bits = self.settle(&what, outcome)?;
        check_length(bits, &what, count)
    }

    /// Writes holding registers from `start`: function 6 for one register unless the device
    /// is configured with `write_multiple_registers`, function 16 otherwise.
    pub async fn write_registers(&mut self, start: u16, words: &[u16]) -> Result<(), DriverError> {
        let what = describe("write", Table::Holding, start, words.len() as u16);
        let single = words.len() == 1 && !self.config.write_multiple_registers;
        let deadline = Instant::now() + self.timeout;
        let c = self.context(deadline).await?;
        let outcome = match single {
            true => timeout_at(deadline, c.write_single_register(start, words[0])).await,
            false => timeout_at(deadline, c.write_multiple_registers(start, words)).await,
        };
        self.settle(&what, outcome)
    }

    /// Writes one coil (function 5).
    pub async fn write_coil(&mut self, address: u16, value: bool) -> Result<(), DriverError> {
        let what = describe("write", Table::Coil, address, 1);
        let deadline = Instant::now() + self.timeout;
        let c = self.context(deadline).await?;
        let outcome = timeout_at(deadline, c.write_single_coil(address, value)).await;
        self.settle(&what, outcome)
    }
}

fn check_length<T>(mut values: Vec<T>, what: &str, count: u16) -> Result<Vec<T>, DriverError> {
    // A bit read's answer is padded to whole bytes; tokio-modbus may keep the padding.
    if values.len() < usize::from(count) {
        return Err(DriverError::Protocol(format!(
            "{what}: {} values in the answer",
            values.len()
        )));
    }
    values.truncate(usize::from(count));
    Ok(values)
}
