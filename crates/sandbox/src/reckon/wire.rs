//! The JSON bodies of the Reckon Web Connector protocol, with the member names of Reckon's
//! documentation. The simulator reads them as strictly as the names go (a misspelt member is
//! missing) but accepts `null` for strings and a numeric string for `tryAgainIn`, as a .NET
//! JSON reader would.

use serde::{Deserialize, Deserializer, Serialize};

/// The web application's answer to `GET {endpoint}?id={connection id}&state={state}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitiateResponse {
    /// Absolute callback URL to POST the result to.
    #[serde(rename = "postURL", default, deserialize_with = "null_as_empty")]
    pub post_url: String,
    /// qbXML to process against the company file; empty when there is no work.
    #[serde(rename = "qbXMLRequest", default, deserialize_with = "null_as_empty")]
    pub qbxml_request: String,
    /// Minutes until the client should try again; see [`super::TryAgainIn`] for when it counts.
    #[serde(rename = "tryAgainIn", default, deserialize_with = "lenient_integer")]
    pub try_again_in: i64,
}

/// The body of `POST {postURL}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRequest {
    /// The qbXML response document; empty when processing failed.
    #[serde(rename = "qbXMLResponse")]
    pub qbxml_response: String,
    /// The connection id of the connection that made the GET.
    #[serde(rename = "connectorId")]
    pub connector_id: String,
    /// The Windows exception code (e.g. `0x80040400`) when processing failed, else empty.
    #[serde(rename = "errorCode")]
    pub error_code: String,
    /// Its message (e.g. "Could not access Reckon Accounts"), else empty.
    #[serde(rename = "errorMsg")]
    pub error_msg: String,
}

/// The web application's answer to the callback POST.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackResponse {
    /// `true`: GET again at once, with `state`.
    #[serde(rename = "repeatCommunication", default)]
    pub repeat_communication: bool,
    /// Sent back as the `state` parameter of the repeat GET.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub state: String,
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

fn lenient_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(0),
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| D::Error::custom(format!("tryAgainIn {n} is not an integer"))),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(0),
        serde_json::Value::String(s) => {
            s.trim().parse().map_err(|_| D::Error::custom(format!("tryAgainIn {s:?} is not an integer")))
        }
        other => Err(D::Error::custom(format!("tryAgainIn {other} is not an integer"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_examples_read_and_write_with_their_member_names() {
        let get: InitiateResponse = serde_json::from_str(
            r#"{"postURL":"https://www.reckon.com/ConnectorService.svc/WCQBXMLResult","qbXMLRequest":"<?xml version=\"1.0\"?><?qbxml version=\"6.1\"?><QBXML><QBXMLMsgsRq onError=\"continueOnError\"><CompanyQueryRq /></QBXMLMsgsRq></QBXML>","tryAgainIn":0}"#,
        )
        .unwrap();
        assert_eq!(get.post_url, "https://www.reckon.com/ConnectorService.svc/WCQBXMLResult");
        assert!(get.qbxml_request.contains("CompanyQueryRq"));

        let post = CallbackRequest {
            qbxml_response: "<QBXML/>".into(),
            connector_id: "12345".into(),
            error_code: String::new(),
            error_msg: String::new(),
        };
        assert_eq!(
            serde_json::to_value(&post).unwrap(),
            serde_json::json!({"qbXMLResponse": "<QBXML/>", "connectorId": "12345", "errorCode": "", "errorMsg": ""})
        );

        let answer: CallbackResponse =
            serde_json::from_str(r#"{"repeatCommunication":true,"state":""}"#).unwrap();
        assert!(answer.repeat_communication);
    }

    #[test]
    fn nulls_and_numeric_strings_are_tolerated() {
        let get: InitiateResponse =
            serde_json::from_str(r#"{"postURL":null,"qbXMLRequest":null,"tryAgainIn":"5"}"#).unwrap();
        assert_eq!(get, InitiateResponse { try_again_in: 5, ..InitiateResponse::default() });
        let get: InitiateResponse = serde_json::from_str(r#"{"tryAgainIn":2.0}"#).unwrap();
        assert_eq!(get.try_again_in, 2);
        assert!(serde_json::from_str::<InitiateResponse>(r#"{"tryAgainIn":"soon"}"#).is_err());
        let answer: CallbackResponse = serde_json::from_str(r#"{"state":null}"#).unwrap();
        assert_eq!(answer, CallbackResponse::default());
    }
}
