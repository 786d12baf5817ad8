//! DOTS's lifecycle messages as protobuf (prost), and this project's data value.
//!
//! The message and field names follow DOTS's `message_definitions/lifecycle.proto`; the
//! same definitions, as a `.proto` file for models in other languages, are
//! [`LIFECYCLE_PROTO`]. The orchestrator is DOTS's `dots-so` and `mso` at once.
//!
//! | message | from → to | topic's last level |
//! |---------|-----------|--------------------|
//! | [`DeployModels`] | so → mso | `DeployModels` (published for observers: the platform deploys) |
//! | [`ReadyForProcessing`] | model → mso | `ReadyForProcessing` |
//! | [`ModelsReady`] | mso → so | `ModelsReady` |
//! | [`ModelParameters`] | so → model | `ModelParameters` (`parameters_dict`: JSON) |
//! | [`Parameterized`] | model → so | `Parameterized` |
//! | [`NewStep`] | so → model | `NewStep` (`parameters_dict`: `{"time_step_nr", "start_time_stamp"}`) |
//! | [`CalculationsDone`] | model → so | `CalculationsDone` |
//! | [`ErrorOccurred`] | model → so | `ErrorOccurred` (`error_message`) |
//! | [`SimulationDone`] | so → model | `SimulationDone` |
//! | [`ModelHasTerminated`] | mso → so | `ModelHasTerminated` (`status`, `exit_code`) |
//! | [`DataValue`] | model → models | a data topic's output name |

use prost::Message;

/// An environment variable of a model.
#[derive(Clone, PartialEq, Message)]
pub struct EnvironmentVariable {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// One model to deploy.
#[derive(Clone, PartialEq, Message)]
pub struct ModelConfiguration {
    /// The model's id.
    #[prost(string, tag = "1")]
    pub model_id: String,
    /// How it is started (DOTS: the container image).
    #[prost(string, tag = "2")]
    pub image_url: String,
    /// Its environment.
    #[prost(message, repeated, tag = "3")]
    pub environment_variables: Vec<EnvironmentVariable>,
}

/// The models of a simulation, to deploy.
#[derive(Clone, PartialEq, Message)]
pub struct DeployModels {
    /// The orchestrator's name.
    #[prost(string, tag = "1")]
    pub simulator_id: String,
    /// The models.
    #[prost(message, repeated, tag = "2")]
    pub model_configurations: Vec<ModelConfiguration>,
    /// Hours the models' logs are kept.
    #[prost(double, tag = "3")]
    pub keep_logs_hours: f64,
}

/// A model is up and subscribed.
#[derive(Clone, PartialEq, Message)]
pub struct ReadyForProcessing {}

/// Every model of the simulation is up.
#[derive(Clone, PartialEq, Message)]
pub struct ModelsReady {}

/// The simulation's parameters for one model: a JSON object.
#[derive(Clone, PartialEq, Message)]
pub struct ModelParameters {
    /// `simulation_name`, `simulation_id`, `model_id`, `start_timestamp` (epoch s),
    /// `time_step_seconds`, `nr_of_time_steps`, `calculation_services`,
    /// `esdl_base64string`, `esdl_ids`, `environment`.
    #[prost(string, tag = "1")]
    pub parameters_dict: String,
}

/// A model has its parameters and its input subscriptions.
#[derive(Clone, PartialEq, Message)]
pub struct Parameterized {}

/// A step begins: a JSON object `{"time_step_nr": "n", "start_time_stamp": epoch s}`.
#[derive(Clone, PartialEq, Message)]
pub struct NewStep {
    /// The JSON object.
    #[prost(string, tag = "1")]
    pub parameters_dict: String,
}

/// A model has finished the step.
#[derive(Clone, PartialEq, Message)]
pub struct CalculationsDone {}

/// A model failed; the simulation ends with this message.
#[derive(Clone, PartialEq, Message)]
pub struct ErrorOccurred {
    /// What went wrong.
    #[prost(string, tag = "1")]
    pub error_message: String,
}

/// The simulation is over: models stop.
#[derive(Clone, PartialEq, Message)]
pub struct SimulationDone {}

/// How a model ended.
#[derive(Clone, PartialEq, Message)]
pub struct ModelHasTerminated {
    /// `SUCCESSFULL` (DOTS's spelling) or `FAILED`.
    #[prost(string, tag = "1")]
    pub status: String,
    /// The exit code (0 for an agent that stopped normally, 1 otherwise).
    #[prost(int32, tag = "2")]
    pub exit_code: i32,
}

/// One output of one ESDL object for one step (this project's data message; DOTS
/// generates one per service).
#[derive(Clone, PartialEq, Message)]
pub struct DataValue {
    /// The step it belongs to.
    #[prost(uint64, tag = "1")]
    pub time_step_nr: u64,
    /// The value.
    #[prost(double, tag = "2")]
    pub value: f64,
}

/// Encodes a message for a publication.
pub fn encode(m: &impl Message) -> crate::core::Value {
    crate::core::Value::Bytes(m.encode_to_vec())
}

/// Why a publication is not the message its topic names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message is not bytes.
    #[error("the message is {0}, not protobuf bytes")]
    NotBytes(&'static str),
    /// The bytes are not that protobuf message.
    #[error("malformed {message}: {reason}")]
    Malformed {
        /// The expected message.
        message: &'static str,
        /// prost's reason.
        reason: String,
    },
}

/// Decodes `M` (named `name`) from a publication's message.
pub fn decode<M: Message + Default>(name: &'static str, v: &crate::core::Value) -> Result<M, DecodeError> {
    use crate::core::Value;
    let bytes = match v {
        Value::Bytes(b) => b.as_slice(),
        Value::Null => &[],
        other => return Err(DecodeError::NotBytes(kind(other))),
    };
    M::decode(bytes).map_err(|e| DecodeError::Malformed {
        message: name,
        reason: e.to_string(),
    })
}

fn kind(v: &crate::core::Value) -> &'static str {
    use crate::core::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => "a number",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
    }
}

/// The definitions above as a `.proto` file, for models written in other languages
/// (`protoc --python_out`).
pub const LIFECYCLE_PROTO: &str = include_str!("lifecycle.proto");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let m = NewStep {
            parameters_dict: r#"{"time_step_nr":"1"}"#.into(),
        };
        let v = encode(&m);
        assert_eq!(decode::<NewStep>("NewStep", &v).unwrap(), m);
        let bad = crate::core::Value::Bytes(vec![0x0a, 0xff, 0x01]);
        let e = decode::<NewStep>("NewStep", &bad).unwrap_err();
        assert!(e.to_string().starts_with("malformed NewStep"), "{e}");
        let e = decode::<NewStep>("NewStep", &crate::core::Value::from("x")).unwrap_err();
        assert_eq!(e, DecodeError::NotBytes("a string"));
    }

    #[test]
    fn the_proto_file_names_every_message() {
        for name in [
            "DeployModels",
            "ReadyForProcessing",
            "ModelsReady",
            "ModelParameters",
            "Parameterized",
            "NewStep",
            "CalculationsDone",
            "ErrorOccurred",
            "SimulationDone",
            "ModelHasTerminated",
            "DataValue",
        ] {
            assert!(LIFECYCLE_PROTO.contains(&format!("message {name} {{")), "{name}");
        }
    }
}
