//! The objects of an ESDL document (the Energy System Description Language, XML): what a
//! simulation splits among its models and what its results are tagged with.
//!
//! Every element with an `id` and an `xsi:type` of `esdl:<Type>` is an object (assets,
//! areas, instances), and so is the root `esdl:EnergySystem`; ports (`InPort`,
//! `OutPort`) are not objects but link them: an object is *connected* to the objects
//! whose ports its ports name in `connectedTo`.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use quick_xml::events::{BytesStart, Event};

/// Why an ESDL document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EsdlError {
    /// Not base64.
    #[error("not base64: {0}")]
    Base64(String),
    /// Not UTF-8 XML.
    #[error("not an XML document: {0}")]
    Xml(String),
    /// No `EnergySystem` root.
    #[error("no esdl:EnergySystem element")]
    NoEnergySystem,
    /// Two objects share an id.
    #[error("the id {0:?} appears twice")]
    DuplicateId(String),
}

/// One object of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsdlObject {
    /// Its `id`.
    pub id: String,
    /// Its `name` (empty when it has none).
    pub name: String,
    /// Its type without the `esdl:` prefix (`PVInstallation`).
    pub esdl_type: String,
    /// The ids of the objects its ports are connected to, sorted.
    pub connected: Vec<String>,
}

/// The objects of a document, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Esdl {
    objects: Vec<EsdlObject>,
    by_id: BTreeMap<String, usize>,
    /// The document as given (base64), handed to the models.
    base64: String,
}

impl Esdl {
    /// Reads a base64 document.
    pub fn from_base64(b64: &str) -> Result<Self, EsdlError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| EsdlError::Base64(e.to_string()))?;
        let xml = std::str::from_utf8(&bytes).map_err(|e| EsdlError::Xml(e.to_string()))?;
        let mut esdl = Self::from_xml(xml)?;
        esdl.base64 = b64.trim().to_owned();
        Ok(esdl)
    }

    /// Reads the XML text of a document.
    pub fn from_xml(xml: &str) -> Result<Self, EsdlError> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut objects: Vec<EsdlObject> = Vec::new();
        // The object each open element belongs to (None above the root).
        let mut stack: Vec<Option<usize>> = Vec::new();
        let mut port_owner: BTreeMap<String, usize> = BTreeMap::new();
        let mut links: Vec<(usize, String)> = Vec::new();
        loop {
            let event = reader.read_event().map_err(|e| EsdlError::Xml(e.to_string()))?;
            let (start, empty) = match &event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => {
                    stack.pop();
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let owner = stack.last().copied().flatten();
            let a = Attributes::of(start)?;
            let local = start.local_name();
            let is_root = local.as_ref() == b"EnergySystem";
            let esdl_type = if is_root {
                Some("EnergySystem".to_owned())
            } else {
                a.xsi_type.clone()
            };
            let mut this = owner;
            match (esdl_type, a.id) {
                (Some(t), Some(id)) if t == "InPort" || t == "OutPort" => {
                    if let Some(o) = owner {
                        port_owner.insert(id, o);
                        for to in a.connected_to.split_whitespace() {
                            links.push((o, to.to_owned()));
                        }
                    }
                }
                (Some(t), Some(id)) => {
                    objects.push(EsdlObject {
                        id,
                        name: a.name.unwrap_or_default(),
                        esdl_type: t,
                        connected: Vec::new(),
                    });
                    this = Some(objects.len() - 1);
                }
                _ => {}
            }
            if !empty {
                stack.push(this);
            }
        }
        if !objects.iter().any(|o| o.esdl_type == "EnergySystem") {
            return Err(EsdlError::NoEnergySystem);
        }
        let mut connected: Vec<BTreeSet<String>> = vec![BTreeSet::new(); objects.len()];
        for (from, port) in links {
            if let Some(&to) = port_owner.get(&port)
                && to != from
            {
                connected[from].insert(objects[to].id.clone());
                connected[to].insert(objects[from].id.clone());
            }
        }
        let mut by_id = BTreeMap::new();
        for (i, (o, c)) in objects.iter_mut().zip(connected).enumerate() {
            o.connected = c.into_iter().collect();
            if by_id.insert(o.id.clone(), i).is_some() {
                return Err(EsdlError::DuplicateId(o.id.clone()));
            }
        }
        Ok(Esdl {
            objects,
            by_id,
            base64: String::new(),
        })
    }

    /// The objects of `esdl_type`, in document order.
    pub fn of_type<'a>(&'a self, esdl_type: &'a str) -> impl Iterator<Item = &'a EsdlObject> + 'a {
        self.objects.iter().filter(move |o| o.esdl_type == esdl_type)
    }

    /// The object `id`.
    pub fn get(&self, id: &str) -> Option<&EsdlObject> {
        self.by_id.get(id).map(|&i| &self.objects[i])
    }

    /// Every object, in document order.
    pub fn objects(&self) -> &[EsdlObject] {
        &self.objects
    }

    /// The document as it was given (base64).
    pub fn base64(&self) -> &str {
        &self.base64
    }
}

struct Attributes {
    id: Option<String>,
    name: Option<String>,
    xsi_type: Option<String>,
    connected_to: String,
}

impl Attributes {
    fn of(e: &BytesStart<'_>) -> Result<Self, EsdlError> {
        let mut a = Attributes {
            id: None,
            name: None,
            xsi_type: None,
            connected_to: String::new(),
        };
        for attr in e.attributes() {
            let attr = attr.map_err(|e| EsdlError::Xml(e.to_string()))?;
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| EsdlError::Xml(e.to_string()))?
                .into_owned();
            match attr.key.as_ref() {
                b"id" => a.id = Some(value),
                b"name" => a.name = Some(value),
                b"xsi:type" => a.xsi_type = Some(value.strip_prefix("esdl:").unwrap_or(&value).to_owned()),
                b"connectedTo" => a.connected_to = value,
                _ => {}
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<esdl:EnergySystem xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:esdl="http://www.tno.nl/esdl" id="es1" name="Town &amp; Co">
  <instance xsi:type="esdl:Instance" id="i1" name="now">
    <area xsi:type="esdl:Area" id="a1">
      <asset xsi:type="esdl:PVInstallation" id="pv1" name="PV 1">
        <port xsi:type="esdl:OutPort" id="p1" connectedTo="p3"/>
      </asset>
      <asset xsi:type="esdl:EConnection" id="ec1" name="grid">
        <port xsi:type="esdl:InPort" id="p3" connectedTo="p1"/>
      </asset>
    </area>
  </instance>
</esdl:EnergySystem>"#;

    #[test]
    fn objects_types_and_connections() {
        let e = Esdl::from_xml(DOC).unwrap();
        let types: Vec<_> = e.objects().iter().map(|o| o.esdl_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "EnergySystem",
                "Instance",
                "Area",
                "PVInstallation",
                "EConnection"
            ]
        );
        assert_eq!(e.get("es1").unwrap().name, "Town & Co");
        assert_eq!(e.get("pv1").unwrap().connected, ["ec1"]);
        assert_eq!(e.get("ec1").unwrap().connected, ["pv1"]);
        assert_eq!(e.of_type("PVInstallation").count(), 1);
    }

    #[test]
    fn bad_documents_are_refused() {
        assert!(matches!(Esdl::from_base64("%%"), Err(EsdlError::Base64(_))));
        assert!(matches!(Esdl::from_xml("<a><b></a>"), Err(EsdlError::Xml(_))));
        assert_eq!(Esdl::from_xml("<a/>"), Err(EsdlError::NoEnergySystem));
        let dup = r#"<esdl:EnergySystem xmlns:xsi="x" id="e"><asset xsi:type="esdl:A" id="e"/></esdl:EnergySystem>"#;
        assert_eq!(Esdl::from_xml(dup), Err(EsdlError::DuplicateId("e".into())));
    }
}
